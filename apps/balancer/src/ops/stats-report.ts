/** The stats a balancer reports to the admin: per pool and backend, read from the live runtime. */
import type { PoolStats } from '#proto';
import type { Runtime } from '../config/runtime';
import type { WorkerPoolStats } from '../cluster/messages';
import type { Backend } from '../pool/backend';
import type { CallWindow } from './call-stats';

/** Takes (and so restarts) each backend's latency window. */
export function collectStats(runtime: Runtime, streamsEnded?: StreamsEnded): PoolStats[] {
  return statsOf(runtime, (b) => b.calls.takeWindow(), streamsEnded);
}

/** Long-lived streams ended per pool and reason since start (streams/stream-governor.ts). */
export type StreamsEnded = ReadonlyMap<string, Readonly<Record<string, number>>>;

/** A worker's stats: the same, with each window as an encoded histogram for the primary to merge. */
export function collectWorkerStats(runtime: Runtime, streamsEnded?: StreamsEnded): WorkerPoolStats[] {
  return statsOf(runtime, (b) => ({ p50Ms: 0, p90Ms: 0, p99Ms: 0, window: b.calls.takeEncodedWindow() }), streamsEnded);
}

function statsOf<W extends CallWindow>(runtime: Runtime, window: (b: Backend) => W, streamsEnded?: StreamsEnded): (PoolStats & { backends: (PoolStats['backends'][number] & W)[] })[] {
  return [...runtime.pools.values()].map((pool) => ({
    name: pool.name,
    panic: pool.panic,
    failure: pool.failure ?? '',
    ...(streamsEnded?.has(pool.name) ? { streamsEnded: { ...streamsEnded.get(pool.name)! } } : {}),
    backends: pool.backends.map((b) => ({
      address: b.address,
      activeStreams: b.openStreams,
      callsByCode: b.calls.callsByCode(),
      ...window(b),
      healthy: b.healthy,
      ejected: b.ejected,
      draining: b.draining,
      unreachable: !b.upstream.available,
      lastError: b.upstream.available ? '' : b.upstream.lastError,
      source: b.source,
    })),
  }));
}
