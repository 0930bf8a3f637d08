/**
 * One spelling for each configuration: pools, backends and health policies sorted by their
 * keys, empty label maps dropped. Two configs that mean the same thing are canonically equal,
 * so exporting and applying back is a no-op and a content hash is a stable ETag.
 */
import { createHash } from 'node:crypto';
import type { RouteConfig } from './route-schema';
import type { BackendConfig, HealthPolicyConfig, PoolConfig, SwitchboardConfig } from './schema';

const byKey = <T>(key: (t: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

function withoutEmptyLabels<T extends { labels?: Record<string, string> | undefined }>(item: T): T {
  if (item.labels === undefined || Object.keys(item.labels).length > 0) return item;
  const copy = { ...item };
  delete copy.labels;
  return copy;
}

export function canonicalBackend(b: BackendConfig): BackendConfig {
  return withoutEmptyLabels(b);
}

const hasEmptyLabels = (item: { labels?: Record<string, string> | undefined }): boolean => item.labels !== undefined && Object.keys(item.labels).length === 0;

/** The pool itself when it is canonical already (so a pool no write touched stays the same object). */
export function canonicalPool(p: PoolConfig): PoolConfig {
  let canonical = !hasEmptyLabels(p);
  for (let i = 0; canonical && i < p.backends.length; i++) {
    const b = p.backends[i]!;
    if (hasEmptyLabels(b) || (i > 0 && !(p.backends[i - 1]!.address < b.address))) canonical = false;
  }
  if (canonical) return p;
  return withoutEmptyLabels({ ...p, backends: p.backends.map(canonicalBackend).sort(byKey((b) => b.address)) });
}

export function canonicalConfig(cfg: SwitchboardConfig): SwitchboardConfig {
  const routes = (cfg.routes ?? []).map(withoutEmptyLabels).sort(byKey((r: RouteConfig) => r.name));
  return {
    healthPolicies: cfg.healthPolicies.map(withoutEmptyLabels).sort(byKey((p: HealthPolicyConfig) => p.name)),
    pools: cfg.pools.map(canonicalPool).sort(byKey((p) => p.name)),
    // Absent when there are none, so a config without routes reads (and hashes) as before.
    ...(routes.length > 0 ? { routes } : {}),
  };
}

/** JSON with object keys sorted, so equal values always serialise the same. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

const digest = (text: string): string => createHash('sha256').update(text).digest('base64url').slice(0, 22);

/** A strong HTTP entity tag for a value: a hash of its stable serialisation. */
export function entityTag(value: unknown): string {
  return `"${digest(stableStringify(value))}"`;
}

const tags = new WeakMap<object, string>();

function resourceTag(resource: object): string {
  let tag = tags.get(resource);
  if (tag === undefined) {
    tag = digest(stableStringify(resource));
    tags.set(resource, tag);
  }
  return tag;
}

function poolTag(pool: PoolConfig): string {
  let tag = tags.get(pool);
  if (tag === undefined) {
    const { backends, ...fields } = pool;
    let text = stableStringify(fields);
    for (const b of backends) text += resourceTag(b);
    tag = digest(text);
    tags.set(pool, tag);
  }
  return tag;
}

/**
 * The entity tag of a canonical config: a hash of its resources' hashes, each kept with the
 * resource object. Equal configs have equal tags; a config made from another by a change (a
 * patch, a one-backend write) shares the untouched objects, so its tag costs what changed plus
 * a pass over the pool list, not a serialisation of 10,000 backends. GET /v1/config's ETag, and
 * what a balancer checks a delta's result against.
 */
export function configTag(cfg: SwitchboardConfig): string {
  const hash = createHash('sha256');
  for (const p of cfg.healthPolicies) hash.update(`h${resourceTag(p)}`);
  for (const p of cfg.pools) hash.update(`p${poolTag(p)}`);
  for (const r of cfg.routes ?? []) hash.update(`r${resourceTag(r)}`);
  return `"${hash.digest('base64url').slice(0, 22)}"`;
}
