/** The stats a balancer reports to the admin: per pool and backend, read from the live runtime. */
import type { PoolStats } from '#proto';
import type { Runtime } from '../config/runtime';

/** Takes (and so restarts) each backend's latency window. */
export function collectStats(runtime: Runtime): PoolStats[] {
  return [...runtime.pools.values()].map((pool) => ({
    name: pool.name,
    panic: pool.panic,
    backends: pool.backends.map((b) => ({
      address: b.address,
      activeStreams: b.activeStreams,
      callsByCode: b.calls.callsByCode(),
      ...b.calls.takeWindow(),
      healthy: b.healthy,
      ejected: b.ejected,
      draining: b.draining,
    })),
  }));
}
