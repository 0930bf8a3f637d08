/**
 * Live figures from the balancers' reports, per backend: summed across nodes (active streams,
 * calls by status, calls/s from each node's last two reports) or per node on request. Latency
 * percentiles cannot be summed; across nodes the worst (highest) is shown.
 */
import { Injectable } from '@nestjs/common';
import type { BackendStats, StatsReport } from '#proto';
import { NodesService, type NodeReport } from './nodes.service';

export interface BackendFigures {
  address: string;
  /** 'dns': found by the pool's DNS discovery on the balancers; 'static': configured. */
  source: 'static' | 'dns';
  activeStreams: number;
  calls: Record<string, number>;
  totalCalls: number;
  errors: number;
  callsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number };
  /** Healthy and reachable on every reporting node (a backend no balancer can reach is not healthy, whatever its health checks). */
  healthy: boolean;
  ejected: boolean;
  draining: boolean;
  /** Some reporting node can reach it. */
  reachable: boolean;
  /** Why a node cannot reach it (the first such node's last error), else null. */
  lastError: string | null;
  /** How many reporting nodes see it healthy. */
  healthyOn: number;
  nodes?: (Omit<BackendFigures, 'nodes' | 'healthyOn'> & { nodeId: string })[];
}

export interface PoolFigures {
  name: string;
  panic: boolean;
  /** Why a reporting balancer cannot serve the pool (a TLS file it cannot read on its host), with the node; null when all serve it. */
  failure: { nodeId: string; reason: string } | null;
  /** Long-lived streams the balancers ended since they started, summed, by reason. */
  streamsEnded: Record<StreamEndReason, number>;
  backends: BackendFigures[];
}

export type StreamEndReason = 'rebalance' | 'max_age' | 'drain_timeout';

export interface StatsView {
  nodes: { nodeId: string; reportedAt: string; appliedRevision: number }[];
  pools: PoolFigures[];
}

const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0);
/** A count map with no prototype: a key such as "constructor" is a key, never an inherited function. */
const counts = (from: Record<string, number>): Record<string, number> => Object.assign(Object.create(null) as Record<string, number>, from);

/** Each report's backends by pool and address, built once per report (a linear pass, not a search per backend). */
const indexes = new WeakMap<StatsReport, Map<string, Map<string, BackendStats>>>();
function indexOf(report: StatsReport): Map<string, Map<string, BackendStats>> {
  let index = indexes.get(report);
  if (index === undefined) {
    index = new Map(report.pools.map((p) => [p.name, new Map(p.backends.map((b) => [b.address, b]))]));
    indexes.set(report, index);
  }
  return index;
}

function rate(now: BackendStats, report: StatsReport, previous: StatsReport | undefined, pool: string): number {
  if (!previous || report.atMs <= previous.atMs) return 0;
  const before = indexOf(previous).get(pool)?.get(now.address);
  if (!before) return 0;
  return Math.max(0, (sum(now.callsByCode) - sum(before.callsByCode)) / ((report.atMs - previous.atMs) / 1000));
}

function figures(b: BackendStats, r: NodeReport, pool: string): Omit<BackendFigures, 'nodes' | 'healthyOn'> {
  const total = sum(b.callsByCode);
  return {
    address: b.address,
    source: b.source === 'dns' ? 'dns' : 'static',
    activeStreams: b.activeStreams,
    calls: counts(b.callsByCode),
    totalCalls: total,
    errors: total - (b.callsByCode.OK ?? 0),
    callsPerSecond: Math.round(rate(b, r.report, r.previous, pool) * 10) / 10,
    latencyMs: { p50: b.p50Ms, p90: b.p90Ms, p99: b.p99Ms },
    healthy: b.healthy && b.unreachable !== true,
    ejected: b.ejected,
    draining: b.draining,
    reachable: b.unreachable !== true,
    lastError: b.unreachable === true ? (b.lastError ?? '') : null,
  };
}

@Injectable()
export class StatsService {
  constructor(private readonly nodes: NodesService) {}

  view(options: { pool?: string; perNode?: boolean } = {}): StatsView {
    const reports = this.nodes.latestReports().sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
    const pools = new Map<string, { panic: boolean; failure: PoolFigures['failure']; streamsEnded: PoolFigures['streamsEnded']; backends: Map<string, BackendFigures> }>();
    for (const r of reports) {
      for (const p of r.report.pools) {
        if (options.pool !== undefined && p.name !== options.pool) continue;
        const pool = pools.get(p.name) ?? { panic: false, failure: null, streamsEnded: { rebalance: 0, max_age: 0, drain_timeout: 0 }, backends: new Map() };
        pools.set(p.name, pool);
        pool.panic ||= p.panic;
        for (const reason of ['rebalance', 'max_age', 'drain_timeout'] as const) pool.streamsEnded[reason] += p.streamsEnded?.[reason] ?? 0;
        if (p.failure) pool.failure ??= { nodeId: r.nodeId, reason: p.failure };
        for (const b of p.backends) {
          const f = figures(b, r, p.name);
          const agg = pool.backends.get(b.address);
          if (!agg) {
            pool.backends.set(b.address, { ...f, calls: counts(f.calls), healthyOn: f.healthy ? 1 : 0, ...(options.perNode ? { nodes: [{ nodeId: r.nodeId, ...f }] } : {}) });
            continue;
          }
          agg.activeStreams += f.activeStreams;
          for (const [code, n] of Object.entries(f.calls)) agg.calls[code] = (agg.calls[code] ?? 0) + n;
          agg.totalCalls += f.totalCalls;
          agg.errors += f.errors;
          agg.callsPerSecond = Math.round((agg.callsPerSecond + f.callsPerSecond) * 10) / 10;
          agg.latencyMs = { p50: Math.max(agg.latencyMs.p50, f.latencyMs.p50), p90: Math.max(agg.latencyMs.p90, f.latencyMs.p90), p99: Math.max(agg.latencyMs.p99, f.latencyMs.p99) };
          agg.healthy &&= f.healthy;
          agg.ejected ||= f.ejected;
          agg.draining ||= f.draining;
          agg.reachable ||= f.reachable;
          agg.lastError ??= f.lastError;
          agg.healthyOn += f.healthy ? 1 : 0;
          agg.nodes?.push({ nodeId: r.nodeId, ...f });
        }
      }
    }
    return {
      nodes: reports.map((r) => ({ nodeId: r.nodeId, reportedAt: new Date(r.receivedAt).toISOString(), appliedRevision: r.report.appliedRevision })),
      pools: [...pools.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, p]) => ({ name, panic: p.panic, failure: p.failure, streamsEnded: p.streamsEnded, backends: [...p.backends.values()].sort((a, b) => (a.address < b.address ? -1 : 1)) })),
    };
  }
}
