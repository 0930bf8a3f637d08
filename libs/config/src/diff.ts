/**
 * The difference between two configurations, resource by resource, in the shape of the
 * contract's plan: create / update (with field-level before -> after) / delete, for health
 * policies, pools and backends. A pool's own fields and its backends are separate changes, so a
 * weight change reads as one backend update and not as a rewrite of the pool.
 */
import type { RouteConfig } from './route-schema';
import type { HealthPolicyConfig, PoolConfig, SwitchboardConfig } from './schema';
import { stableStringify } from './canonical';

export type ChangeKind = 'healthPolicy' | 'pool' | 'backend' | 'route';
export type ChangeAction = 'create' | 'update' | 'delete';

export interface FieldChange {
  /** Dotted path within the resource: `active.intervalMs`, `match.services`, `labels.team`. */
  path: string;
  before: unknown;
  after: unknown;
}

export interface Change {
  action: ChangeAction;
  kind: ChangeKind;
  /** The resource's key: a policy or pool name, or a backend address. */
  name: string;
  /** For backends, the pool they belong to. */
  pool?: string;
  fields: FieldChange[];
}

export interface ConfigDiff {
  changes: Change[];
}

/** Leaves of a JSON value by dotted path; arrays are compared whole. */
function leaves(value: unknown, prefix: string, out: Map<string, unknown>): Map<string, unknown> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) if (v !== undefined) leaves(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix !== '') {
    out.set(prefix, value);
  }
  return out;
}

export function diffFields(before: object | undefined, after: object | undefined): FieldChange[] {
  const a = leaves(before ?? {}, '', new Map());
  const b = leaves(after ?? {}, '', new Map());
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  const fields: FieldChange[] = [];
  for (const path of paths) {
    const x = a.get(path);
    const y = b.get(path);
    if (stableStringify(x) !== stableStringify(y)) fields.push({ path, before: x ?? null, after: y ?? null });
  }
  return fields;
}

/** Equal as JSON values (object keys in any order; undefined members count as absent). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => sameJson(x, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  let count = 0;
  for (const k in ao) {
    if (ao[k] === undefined) continue;
    count++;
    if (!sameJson(ao[k], bo[k])) return false;
  }
  for (const k in bo) if (bo[k] !== undefined) count--;
  return count === 0;
}

function diffByKey<T>(
  before: readonly T[],
  after: readonly T[],
  key: (t: T) => string,
  body: (t: T) => object,
  emit: (action: ChangeAction, name: string, fields: FieldChange[]) => void,
): void {
  const old = new Map(before.map((t) => [key(t), t]));
  const next = new Map(after.map((t) => [key(t), t]));
  for (const [name, is] of next) {
    const was = old.get(name);
    // Most resources are unchanged: an equality check is far cheaper than listing their fields.
    if (was !== undefined && (was === is || sameJson(body(was), body(is)))) continue;
    const fields = diffFields(was ? body(was) : undefined, body(is));
    if (!was) emit('create', name, fields);
    else if (fields.length > 0) emit('update', name, fields);
  }
  for (const [name, was] of old) if (!next.has(name)) emit('delete', name, diffFields(body(was), undefined));
}

const policyBody = ({ name: _name, ...rest }: HealthPolicyConfig) => rest;
const poolBody = ({ name: _name, backends: _backends, ...rest }: PoolConfig) => rest;
const routeBody = ({ name: _name, ...rest }: RouteConfig) => rest;

export function diffConfigs(before: SwitchboardConfig, after: SwitchboardConfig): ConfigDiff {
  const changes: Change[] = [];
  diffByKey(before.healthPolicies, after.healthPolicies, (p) => p.name, policyBody, (action, name, fields) =>
    changes.push({ action, kind: 'healthPolicy', name, fields }),
  );
  diffByKey(before.pools, after.pools, (p) => p.name, poolBody, (action, name, fields) => changes.push({ action, kind: 'pool', name, fields }));
  diffByKey(before.routes ?? [], after.routes ?? [], (r) => r.name, routeBody, (action, name, fields) => changes.push({ action, kind: 'route', name, fields }));
  const oldPools = new Map(before.pools.map((p) => [p.name, p]));
  const newPools = new Map(after.pools.map((p) => [p.name, p]));
  for (const name of new Set([...oldPools.keys(), ...newPools.keys()])) {
    const was = oldPools.get(name);
    const is = newPools.get(name);
    // A pool no write touched is the same object in both (validation reuses it): nothing in it changed.
    if (was === is) continue;
    diffByKey(was?.backends ?? [], is?.backends ?? [], (b) => b.address, ({ address: _a, ...rest }) => rest, (action, address, fields) =>
      changes.push({ action, kind: 'backend', name: address, pool: name, fields }),
    );
  }
  return { changes: orderChanges(changes) };
}

/** Policies first, then pools, each pool followed by its backends: the order a reader expects. */
function orderChanges(changes: Change[]): Change[] {
  const rank = (c: Change) => (c.kind === 'healthPolicy' ? `0/${c.name}` : c.kind === 'pool' ? `1/${c.name}/` : c.kind === 'route' ? `2/${c.name}` : `1/${c.pool}/${c.name}`);
  return [...changes].sort((a, b) => (rank(a) < rank(b) ? -1 : rank(a) > rank(b) ? 1 : 0));
}
