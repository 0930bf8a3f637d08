/**
 * A change to a configuration as whole resources: which health policies, pools (their own
 * fields) and backends to put (create or replace) and which to delete. Applied to the config it
 * was made from, it gives exactly the next one, in canonical form. The admin stores it in the
 * revisions between checkpoints and pushes it to a balancer that runs the revision before (a
 * delta, as delta xDS sends): its size follows the change, not the config.
 */
import { canonicalBackend, canonicalPool } from './canonical';
import type { ConfigDiff } from './diff';
import type { RouteConfig } from './route-schema';
import type { BackendConfig, HealthPolicyConfig, PoolConfig, SwitchboardConfig } from './schema';

export type PoolFields = Omit<PoolConfig, 'backends'>;

export interface ConfigPatch {
  healthPolicies?: { put?: HealthPolicyConfig[]; delete?: string[] };
  /** A put pool keeps the backends it had (none, if new); its backends change through `backends`. */
  pools?: { put?: PoolFields[]; delete?: string[] };
  backends?: { put?: { pool: string; backend: BackendConfig }[]; delete?: { pool: string; address: string }[] };
  routes?: { put?: RouteConfig[]; delete?: string[] };
}

/** The patch that takes the config `diff` was made from to `after`. */
export function patchFromDiff(after: SwitchboardConfig, diff: ConfigDiff): ConfigPatch {
  const patch: Required<{ [K in keyof ConfigPatch]: { put: NonNullable<NonNullable<ConfigPatch[K]>['put']>; delete: NonNullable<NonNullable<ConfigPatch[K]>['delete']> } }> = {
    healthPolicies: { put: [], delete: [] },
    pools: { put: [], delete: [] },
    backends: { put: [], delete: [] },
    routes: { put: [], delete: [] },
  };
  let pools: Map<string, PoolConfig> | undefined;
  const pool = (name: string): PoolConfig => (pools ??= new Map(after.pools.map((p) => [p.name, p]))).get(name)!;
  for (const c of diff.changes) {
    if (c.kind === 'healthPolicy') {
      if (c.action === 'delete') patch.healthPolicies.delete.push(c.name);
      else patch.healthPolicies.put.push(after.healthPolicies.find((p) => p.name === c.name)!);
    } else if (c.kind === 'route') {
      if (c.action === 'delete') patch.routes.delete.push(c.name);
      else patch.routes.put.push((after.routes ?? []).find((r) => r.name === c.name)!);
    } else if (c.kind === 'pool') {
      if (c.action === 'delete') patch.pools.delete.push(c.name);
      else {
        const { backends: _backends, ...fields } = pool(c.name);
        patch.pools.put.push(fields);
      }
    } else if (c.action === 'delete') {
      // A deleted pool's backends go with it.
      if (pool(c.pool!) !== undefined) patch.backends.delete.push({ pool: c.pool!, address: c.name });
    } else {
      patch.backends.put.push({ pool: c.pool!, backend: pool(c.pool!).backends.find((b) => b.address === c.name)! });
    }
  }
  const out: ConfigPatch = {};
  for (const kind of ['healthPolicies', 'pools', 'backends', 'routes'] as const) {
    const part = patch[kind];
    if (part.put.length === 0 && part.delete.length === 0) continue;
    (out as Record<string, unknown>)[kind] = { ...(part.put.length > 0 ? { put: part.put } : {}), ...(part.delete.length > 0 ? { delete: part.delete } : {}) };
  }
  return out;
}

const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * `base` with `patch` applied, canonical. `base` is not modified: untouched pools and backends
 * are shared with it, so the cost follows the patch (plus one pass over the pool list).
 */
export function applyPatch(base: SwitchboardConfig, patch: ConfigPatch): SwitchboardConfig {
  return applyPatches(base, [patch]);
}

/** `base` with `patches` applied in order: one pass over the pool list for all of them. */
export function applyPatches(base: SwitchboardConfig, patches: readonly ConfigPatch[]): SwitchboardConfig {
  let healthPolicies = base.healthPolicies;
  if (patches.some((p) => p.healthPolicies)) {
    const byKey = new Map(healthPolicies.map((p) => [p.name, p]));
    for (const patch of patches) {
      for (const name of patch.healthPolicies?.delete ?? []) byKey.delete(name);
      for (const p of patch.healthPolicies?.put ?? []) byKey.set(p.name, p);
    }
    healthPolicies = [...byKey.values()].sort(byName);
  }
  let routes = base.routes;
  if (patches.some((p) => p.routes)) {
    const byKey = new Map((routes ?? []).map((r) => [r.name, r]));
    for (const patch of patches) {
      for (const name of patch.routes?.delete ?? []) byKey.delete(name);
      for (const r of patch.routes?.put ?? []) byKey.set(r.name, r);
    }
    routes = [...byKey.values()].sort(byName);
  }
  const withRoutes = <C extends Omit<SwitchboardConfig, 'routes'>>(c: C): SwitchboardConfig => (routes !== undefined && routes.length > 0 ? { ...c, routes } : c);
  if (!patches.some((p) => p.pools || p.backends)) return withRoutes({ healthPolicies, pools: base.pools });
  const pools = new Map(base.pools.map((p) => [p.name, p]));
  const touched = new Map<string, PoolConfig>();
  const edit = (name: string): PoolConfig | undefined => {
    let p = touched.get(name);
    if (p === undefined) {
      const was = pools.get(name);
      if (was === undefined) return undefined;
      p = { ...was, backends: [...was.backends] };
      touched.set(name, p);
      pools.set(name, p);
    }
    return p;
  };
  for (const patch of patches) {
    for (const name of patch.pools?.delete ?? []) {
      pools.delete(name);
      touched.delete(name);
    }
    for (const fields of patch.pools?.put ?? []) {
      const p = { ...fields, backends: [...(pools.get(fields.name)?.backends ?? [])] } as PoolConfig;
      pools.set(fields.name, p);
      touched.set(fields.name, p);
    }
    for (const { pool, address } of patch.backends?.delete ?? []) {
      const p = edit(pool);
      if (p !== undefined) p.backends = p.backends.filter((b) => b.address !== address);
    }
    for (const { pool, backend } of patch.backends?.put ?? []) {
      const p = edit(pool);
      if (p === undefined) throw new Error(`patch puts backend ${backend.address} into pool "${pool}", which does not exist`);
      const at = p.backends.findIndex((b) => b.address === backend.address);
      if (at >= 0) p.backends[at] = canonicalBackend(backend);
      else p.backends.push(canonicalBackend(backend));
    }
  }
  for (const [name, p] of touched) pools.set(name, canonicalPool(p));
  // Mostly sorted already: the sort is a linear pass unless pools were added.
  return withRoutes({ healthPolicies, pools: [...pools.values()].sort(byName) });
}
