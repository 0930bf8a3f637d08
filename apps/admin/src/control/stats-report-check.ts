/**
 * A balancer's stats report as the admin keeps it: checked against the config and bounded, so a
 * broken or hostile node (any holder of a node token) cannot make the admin's figures lie, grow
 * without bound, or break `/metrics`.
 *
 * - Only pools and backends of the current config are kept; a backend listed twice counts once
 *   (the first). A pool with DNS discovery may also report up to MAX_DISCOVERED backends the
 *   balancer found itself (`source: "dns"`, valid host:port). So a report costs at most the
 *   config's size plus that, whatever it lists.
 * - Counts are integers in [0, MAX_COUNT]; latencies finite numbers in [0, MAX_LATENCY_MS];
 *   `callsByCode` keys are gRPC status names only, in a map with no prototype. A report with any
 *   value out of range is refused whole (the node's previous report stays), and the reason says
 *   which value: a balancer that sends one is broken, and half of its figures are no truth.
 */
import { addressProblem, GRPC_CODE_NAMES, type SwitchboardConfig as Config } from '#config';
import type { BackendStats, PoolStats, StatsReport } from '#proto';

/** No balancer has more active streams than this on one backend (HTTP/2 allows 2^31 per connection, not per backend in practice). */
export const MAX_ACTIVE_STREAMS = 10_000_000;
/** A call counter past 2^53 is not a count any more. */
export const MAX_COUNT = Number.MAX_SAFE_INTEGER;
/** A latency percentile over a day is not a measurement. */
export const MAX_LATENCY_MS = 86_400_000;

/** Backends a balancer may report for a discovering pool beyond its static ones (the balancer's own bound per DNS name). */
export const MAX_DISCOVERED = 1000;

/** A backend's last error is kept to this many characters. */
const MAX_ERROR_CHARS = 512;

const CODE_NAMES: ReadonlySet<string> = new Set(GRPC_CODE_NAMES);

export type CheckedReport = { ok: true; report: StatsReport; dropped: number } | { ok: false; reason: string };

const isCount = (n: unknown, max: number): boolean => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= max;
const isLatency = (n: unknown): boolean => typeof n === 'number' && Number.isFinite(n) && n >= 0 && n <= MAX_LATENCY_MS;

/** The backends each pool of `config` has, by pool name (made once per config object). */
const known = new WeakMap<Config, Map<string, { statics: Set<string>; discovers: boolean }>>();
function backendsOf(config: Config): Map<string, { statics: Set<string>; discovers: boolean }> {
  let index = known.get(config);
  if (index === undefined) {
    index = new Map(config.pools.map((p) => [p.name, { statics: new Set(p.backends.map((b) => b.address)), discovers: p.discovery !== undefined }]));
    known.set(config, index);
  }
  return index;
}

function checkBackend(b: BackendStats, where: string): BackendStats | string {
  if (!isCount(b.activeStreams, MAX_ACTIVE_STREAMS)) return `${where}.activeStreams: ${String(b.activeStreams)} is not an integer in [0, ${MAX_ACTIVE_STREAMS}]`;
  for (const field of ['p50Ms', 'p90Ms', 'p99Ms'] as const) {
    if (!isLatency(b[field])) return `${where}.${field}: ${String(b[field])} is not a number in [0, ${MAX_LATENCY_MS}]`;
  }
  const calls: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [code, n] of Object.entries(b.callsByCode ?? {})) {
    if (!CODE_NAMES.has(code)) return `${where}.callsByCode: ${JSON.stringify(code.slice(0, 40))} is not a gRPC status name`;
    if (!isCount(n, MAX_COUNT)) return `${where}.callsByCode.${code}: ${String(n)} is not a count`;
    calls[code] = n;
  }
  return {
    address: b.address,
    activeStreams: b.activeStreams,
    callsByCode: calls,
    p50Ms: b.p50Ms,
    p90Ms: b.p90Ms,
    p99Ms: b.p99Ms,
    healthy: b.healthy === true,
    ejected: b.ejected === true,
    draining: b.draining === true,
    unreachable: b.unreachable === true,
    lastError: b.unreachable === true ? String(b.lastError ?? '').slice(0, MAX_ERROR_CHARS) : '',
    source: b.source === 'dns' ? 'dns' : 'static',
  };
}

const END_REASONS: ReadonlySet<string> = new Set(['rebalance', 'max_age', 'drain_timeout']);

/** A pool's streams ended by reason: known reasons and counts only, in a map with no prototype. */
function checkStreamsEnded(value: unknown, where: string): Record<string, number> | undefined | string {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object') return `${where}: not a map`;
  const out = Object.create(null) as Record<string, number>;
  for (const [reason, n] of Object.entries(value)) {
    if (!END_REASONS.has(reason)) return `${where}: ${JSON.stringify(reason.slice(0, 40))} is not a reason streams end for`;
    if (!isCount(n, MAX_COUNT)) return `${where}.${reason}: ${String(n)} is not a count`;
    out[reason] = n;
  }
  return out;
}

/** `report` kept to what `config` has, or why it is refused. */
export function checkStatsReport(report: StatsReport, config: Config): CheckedReport {
  if (!isCount(report.atMs, MAX_COUNT)) return { ok: false, reason: `atMs: ${String(report.atMs)} is not a time` };
  if (!isCount(report.appliedRevision, MAX_COUNT)) return { ok: false, reason: `appliedRevision: ${String(report.appliedRevision)} is not a revision` };
  const index = backendsOf(config);
  const pools: PoolStats[] = [];
  const seenPools = new Set<string>();
  let dropped = 0;
  for (const p of report.pools ?? []) {
    const pool = index.get(p.name);
    if (pool === undefined || seenPools.has(p.name)) {
      dropped += 1 + (p.backends?.length ?? 0);
      continue;
    }
    seenPools.add(p.name);
    const seen = new Set<string>();
    const backends: BackendStats[] = [];
    let discovered = 0;
    for (const b of p.backends ?? []) {
      const isStatic = pool.statics.has(b.address);
      const mayBeDiscovered = !isStatic && pool.discovers && b.source === 'dns' && discovered < MAX_DISCOVERED && typeof b.address === 'string' && b.address.length <= 261 && addressProblem(b.address) === null;
      if ((!isStatic && !mayBeDiscovered) || seen.has(b.address)) {
        dropped++;
        continue;
      }
      if (mayBeDiscovered) discovered++;
      seen.add(b.address);
      const checked = checkBackend(b, `pools[${JSON.stringify(p.name)}].backends[${JSON.stringify(b.address)}]`);
      if (typeof checked === 'string') return { ok: false, reason: checked };
      backends.push(checked);
    }
    const ended = checkStreamsEnded(p.streamsEnded, `pools[${JSON.stringify(p.name)}].streamsEnded`);
    if (typeof ended === 'string') return { ok: false, reason: ended };
    pools.push({ name: p.name, panic: p.panic === true, failure: String(p.failure ?? '').slice(0, MAX_ERROR_CHARS), backends, ...(ended !== undefined ? { streamsEnded: ended } : {}) });
  }
  return { ok: true, report: { atMs: report.atMs, appliedRevision: report.appliedRevision, pools }, dropped };
}
