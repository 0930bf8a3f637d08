/** The `/state` document: what the balancer is serving right now (shape in ../shared/CONTRACT.md). */
import type { Runtime } from '../config/runtime';
import type { DiscoveryStatus } from '../discovery/dns-watch';

export interface BackendState {
  address: string;
  /** 'static' (the pool's `backends`) or 'dns' (found by its discovery). */
  source: 'static' | 'dns';
  weight: number;
  /** The weight pickers use now: below `weight` while slow start ramps it up. */
  effectiveWeight: number;
  activeStreams: number;
  healthy: boolean;
  ejected: boolean;
  draining: boolean;
  reachable: boolean;
  /** Why the last connection attempt failed (a TLS verification error says so), or null. */
  lastError: string | null;
  available: boolean;
  totalCalls: number;
  failedCalls: number;
  sessions: number;
  latencyMs: number | null;
  /** The age of the oldest call still open here whose response began (a long-lived stream), in ms; null when none. */
  oldestStreamAgeMs: number | null;
}

export interface PoolState {
  name: string;
  algorithm: string;
  /** Absent: only routes send it calls. */
  match?: { services?: string[]; authority?: string };
  maxStreamsPerBackend: number;
  panic: boolean;
  available: number;
  /** Why this balancer cannot serve the pool (a TLS file it cannot read), or null. */
  failure: string | null;
  /** Calls waiting in the pool's queue for a backend below maxStreamsPerBackend. */
  queued: number;
  /** With hedging: the delay before a hedge now, in ms (adaptive once the pool has enough samples). */
  hedgeDelayMs?: number;
  /** With retry or hedging: the budget's 10 s window (calls, retries plus hedges, and how many it allows). */
  retryBudget?: { calls: number; retries: number; allowed: number };
  /** With `discovery.dns`: the name, the addresses of its last good answer, and when it last succeeded and failed. */
  discovery?: DiscoveryStatus;
  backends: BackendState[];
}

export interface BalancerState {
  revision: number;
  pools: PoolState[];
}

export function describeState(runtime: Runtime, discovery?: ReadonlyMap<string, DiscoveryStatus>): BalancerState {
  const now = performance.now();
  return {
    revision: runtime.revision,
    pools: runtime.config.pools.map((pc) => {
      const pool = runtime.pools.get(pc.name)!;
      return {
        name: pool.name,
        algorithm: pool.algorithm,
        match: pc.match,
        maxStreamsPerBackend: pool.maxStreamsPerBackend,
        panic: pool.panic,
        available: pool.ready,
        failure: pool.failure,
        queued: pool.queued,
        ...(pool.policy?.hedging ? { hedgeDelayMs: pool.policy.hedgeDelayMs(now) } : {}),
        ...(pool.policy ? { retryBudget: pool.policy.budget.state(now) } : {}),
        ...(discovery?.has(pc.name) ? { discovery: discovery.get(pc.name)! } : {}),
        backends: pool.backends.map((b) => {
          const latency = b.latencyMs(now);
          return {
            address: b.address,
            source: b.source,
            weight: b.configuredWeight,
            effectiveWeight: Math.round(b.weight * 1000) / 1000,
            activeStreams: b.openStreams,
            healthy: b.healthy,
            ejected: b.ejected,
            draining: b.draining,
            reachable: b.upstream.available,
            lastError: b.upstream.lastError || null,
            available: b.available,
            totalCalls: b.totalCalls,
            failedCalls: b.failedCalls,
            sessions: b.upstream.sessionCount,
            latencyMs: Number.isNaN(latency) ? null : Math.round(latency * 1000) / 1000,
            oldestStreamAgeMs: b.streams.head === null ? null : Math.round(now - b.streams.head.committedAt),
          };
        }),
      };
    }),
  };
}
