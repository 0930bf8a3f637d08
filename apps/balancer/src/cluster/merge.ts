/**
 * How a multi-worker balancer shows itself as one: its workers' `/state` and stats merged over
 * the primary's view of the configuration and verdicts. Pure functions over plain documents.
 *
 * Per backend, counts add up (active streams, calls, sessions); health, ejection and draining
 * are the primary's verdicts; reachability and availability hold if they hold on any worker;
 * the latency estimate is the highest (the slowest view wins, as a picker would fear it).
 */
import type { PoolStats } from '#proto';
import { mergedWindow } from '../ops/call-stats';
import type { BackendState, BalancerState, PoolState } from '../ops/state';
import type { WorkerPoolStats } from './messages';
import { backendKey } from '../pool/backend-key';


/** A worker's share of `/state`, with its process id. */
export type WorkerState = BalancerState & { pid: number };

export interface WorkersState {
  /** Workers serving now. */
  count: number;
  /** Workers that died and were replaced since the start. */
  restarts: number;
  /** Each worker that answered: its process and the calls in flight on it (how evenly connections spread). */
  processes: { pid: number; activeStreams: number }[];
}

export function mergeStates(primary: BalancerState, workers: readonly WorkerState[], about: { count: number; restarts: number }): BalancerState & { workers: WorkersState } {
  const backends = new Map<string, BackendState[]>();
  const pools = new Map<string, PoolState[]>();
  for (const w of workers) {
    for (const p of w.pools) {
      pools.set(p.name, [...(pools.get(p.name) ?? []), p]);
      for (const b of p.backends) {
        const k = backendKey(p.name, b.address);
        backends.set(k, [...(backends.get(k) ?? []), b]);
      }
    }
  }
  return {
    revision: primary.revision,
    workers: {
      ...about,
      processes: workers.map((w) => ({ pid: w.pid, activeStreams: sum(w.pools, (p) => sum(p.backends, (b) => b.activeStreams)) })),
    },
    pools: primary.pools.map((pool) => {
      const shares = pools.get(pool.name) ?? [];
      const budgets = shares.flatMap((s) => (s.retryBudget ? [s.retryBudget] : []));
      const delays = shares.flatMap((s) => (s.hedgeDelayMs !== undefined ? [s.hedgeDelayMs] : []));
      return {
        ...pool,
        panic: shares.length > 0 ? shares.some((s) => s.panic) : pool.panic,
        queued: sum(shares, (s) => s.queued ?? 0),
        available: shares.length > 0 ? Math.max(...shares.map((s) => s.available)) : pool.available,
        ...(delays.length > 0 ? { hedgeDelayMs: Math.max(...delays) } : {}),
        ...(budgets.length > 0 ? { retryBudget: { calls: sum(budgets, (b) => b.calls), retries: sum(budgets, (b) => b.retries), allowed: sum(budgets, (b) => b.allowed) } } : {}),
        backends: pool.backends.map((b) => mergeBackend(b, backends.get(backendKey(pool.name, b.address)) ?? [])),
      };
    }),
  };
}

function mergeBackend(primary: BackendState, shares: readonly BackendState[]): BackendState {
  if (shares.length === 0) return primary;
  const latencies = shares.flatMap((s) => (s.latencyMs === null ? [] : [s.latencyMs]));
  return {
    ...primary,
    effectiveWeight: Math.min(...shares.map((s) => s.effectiveWeight)),
    activeStreams: sum(shares, (s) => s.activeStreams),
    totalCalls: sum(shares, (s) => s.totalCalls),
    failedCalls: sum(shares, (s) => s.failedCalls),
    sessions: sum(shares, (s) => s.sessions),
    oldestStreamAgeMs: shares.reduce<number | null>((m, s) => (s.oldestStreamAgeMs === null || s.oldestStreamAgeMs === undefined ? m : Math.max(m ?? 0, s.oldestStreamAgeMs)), null),
    reachable: shares.some((s) => s.reachable),
    available: shares.some((s) => s.available),
    lastError: shares.find((s) => s.lastError !== null)?.lastError ?? null,
    latencyMs: latencies.length > 0 ? Math.max(...latencies) : null,
  };
}

/** The stats a multi-worker balancer reports to the admin: the primary's pools, with every worker's calls. */
export function mergeStats(primary: readonly PoolStats[], workers: readonly WorkerPoolStats[][]): PoolStats[] {
  const shares = new Map<string, WorkerPoolStats['backends']>();
  for (const w of workers) {
    for (const p of w) {
      for (const b of p.backends) {
        const k = backendKey(p.name, b.address);
        shares.set(k, [...(shares.get(k) ?? []), b]);
      }
    }
  }
  const ended = new Map<string, Record<string, number>>();
  for (const w of workers) {
    for (const p of w) {
      if (p.streamsEnded === undefined) continue;
      const into = ended.get(p.name) ?? {};
      for (const [reason, n] of Object.entries(p.streamsEnded)) into[reason] = (into[reason] ?? 0) + n;
      ended.set(p.name, into);
    }
  }
  return primary.map((pool) => ({
    ...pool,
    ...(ended.has(pool.name) ? { streamsEnded: ended.get(pool.name)! } : {}),
    backends: pool.backends.map((b) => {
      const mine = shares.get(backendKey(pool.name, b.address)) ?? [];
      const callsByCode: Record<string, number> = {};
      for (const s of mine) for (const [code, n] of Object.entries(s.callsByCode)) callsByCode[code] = (callsByCode[code] ?? 0) + n;
      // Reachable when any worker reaches it (as in /state).
      const unreachable = mine.length > 0 ? mine.every((s) => s.unreachable === true) : b.unreachable === true;
      const lastError = unreachable ? (mine.find((s) => s.lastError)?.lastError ?? b.lastError ?? '') : '';
      return { ...b, activeStreams: sum(mine, (s) => s.activeStreams), callsByCode, ...mergedWindow(mine.map((s) => s.window)), unreachable, lastError };
    }),
  }));
}

function sum<T>(items: readonly T[], value: (item: T) => number): number {
  let n = 0;
  for (const i of items) n += value(i);
  return n;
}
