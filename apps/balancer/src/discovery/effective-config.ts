/**
 * The config a balancer serves: the revision it was given, with each discovering pool's
 * backends made the union of its static `backends` and the addresses its DNS name resolves to
 * now. Pure; the Runtime then treats a discovered backend like any other (slow start when it
 * joins, health checks, no new calls once it is gone while its calls in flight finish).
 *
 * A discovered address that is also a static backend is that static backend. `drainAddresses`
 * drains the backends it names, discovered or static.
 */
import type { BackendConfig, PoolConfig, SwitchboardConfig } from '#config';
import type { Discovered } from './dns-lookup';

/** A backend as the Runtime reads it: static ones carry neither field. */
export type ServedBackendConfig = BackendConfig & {
  /** 'dns': found by the pool's discovery. */
  source?: 'dns';
  /** SRV priority: the pool serves the lowest priority that has an available backend. */
  priority?: number;
};

/** A pool as the Runtime reads it: with `discoveryNote` when its discovered set is empty (why, for UNAVAILABLE messages). */
export type ServedPoolConfig = PoolConfig & { discoveryNote?: string };

export interface DiscoveredSet {
  backends: readonly Discovered[];
  /** Why the set is empty, or null. */
  emptyReason: string | null;
}

export function effectiveConfig(config: SwitchboardConfig, discovered: ReadonlyMap<string, DiscoveredSet>): SwitchboardConfig {
  if (!config.pools.some((p) => p.discovery !== undefined || (p.drainAddresses?.length ?? 0) > 0)) return config;
  return { ...config, pools: config.pools.map((p) => servedPool(p, discovered.get(p.name))) };
}

function servedPool(pool: PoolConfig, set: DiscoveredSet | undefined): ServedPoolConfig {
  const drained = new Set(pool.drainAddresses ?? []);
  if (pool.discovery === undefined && drained.size === 0) return pool;
  const backends: ServedBackendConfig[] = pool.backends.map((b) => (drained.has(b.address) && !b.drain ? { ...b, drain: true } : b));
  const statics = new Set(pool.backends.map((b) => b.address));
  for (const d of set?.backends ?? []) {
    if (statics.has(d.address)) continue;
    backends.push({ address: d.address, weight: d.weight, drain: drained.has(d.address), source: 'dns', priority: d.priority });
  }
  const served: ServedPoolConfig = { ...pool, backends };
  if (pool.discovery !== undefined && (set === undefined || set.backends.length === 0)) {
    served.discoveryNote = set?.emptyReason ?? `DNS name "${pool.discovery.dns.name}" is not resolved yet`;
  }
  return served;
}
