/**
 * Long-lived streams follow the fleet (issue 23): `npm run bench -- --only streams`.
 *
 * 300 server-streaming subscriptions (4 client connections) on 3 backends; 3 more join (SIGHUP).
 * With `streams.rebalance` (tolerance 10%, 20 per second, minAge 1 s), the clients re-open every
 * stream the balancer ends (UNAVAILABLE). Measured: time from the reload to an even spread
 * (cv of active streams <= 0.15), streams ended against the streams that had to move, the most
 * ended in one calendar second, in any 1,000 ms and in any 100 ms (how bursty the re-opens that reach
 * the backends are), and the client-visible re-open latency (end -> new stream's response
 * headers), p50 and p99. With --workers 1 and the default workers; all on 127.0.0.1.
 */
import * as grpc from '@grpc/grpc-js';
import { startEchoBackend } from '../test/fixtures/echo-backend';
import { echoClient } from '../test/fixtures/echo-proto';
import { startBalancer, waitFor } from '../test/support/processes';

export interface StreamsRow {
  workers: string;
  evenAfterMs: number;
  cv: number;
  spread: number[];
  ended: number;
  hadToMove: number;
  mostInOneSecond: number;
  /** The most ends within any 1,000 ms, and within any 100 ms (client clock). */
  mostInAnySecond: number;
  mostIn100Ms: number;
  reopenP50Ms: number;
  reopenP99Ms: number;
}

/** The most of `times` (ms) that fall within any span of `windowMs`. */
export function mostWithin(times: readonly number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let lo = 0, hi = 0; hi < t.length; hi++) {
    while (t[hi]! - t[lo]! >= windowMs) lo++;
    most = Math.max(most, hi - lo + 1);
  }
  return most;
}

const cv = (xs: number[]): number => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length) / mean;
};

async function once(workers: string[], label: string): Promise<StreamsRow> {
  const backends = await Promise.all(['s1', 's2', 's3', 's4', 's5', 's6'].map((name) => startEchoBackend({ name })));
  const streams = { rebalance: { tolerancePercent: 10, maxPerSecond: 20, minAgeMs: 1000 } };
  const config = (n: number) => ({ pools: [{ name: 'subs', match: { services: ['*'] }, algorithm: 'least_conn', streams, backends: backends.slice(0, n).map((b) => ({ address: b.address })) }] });
  const lb = await startBalancer(config(3), workers);
  const clients = [0, 1, 2, 3].map(() => echoClient(lb.listen));
  const endedAt: number[] = [];
  const reopen: number[] = [];
  const calls = new Set<grpc.ClientReadableStream<unknown>>();
  let stopping = false;
  const open = (client: (typeof clients)[number], since?: number): void => {
    const call = client.ServerStream({ hang: true }) as grpc.ClientReadableStream<unknown>;
    calls.add(call);
    if (since !== undefined) call.on('metadata', () => reopen.push(Date.now() - since));
    call.on('error', () => {});
    call.on('status', (s: grpc.StatusObject) => {
      calls.delete(call);
      if (stopping || s.code !== grpc.status.UNAVAILABLE) return;
      const now = Date.now();
      endedAt.push(now);
      open(client, now);
    });
  };
  const active = (): number[] => backends.map((b) => b.stats.active);
  try {
    for (let i = 0; i < 300; i++) open(clients[i % 4]!);
    await waitFor('300 streams', () => active().reduce((a, b) => a + b, 0) === 300, 30_000);
    const hadToMove = active().reduce((a, s) => a + Math.max(0, s - 50), 0);
    const t0 = Date.now();
    await lb.reload(config(6));
    const spread = await waitFor('even', () => {
      const a = active();
      return a.reduce((x, y) => x + y, 0) === 300 && cv(a) <= 0.15 && a;
    }, 60_000);
    const evenAfterMs = Date.now() - t0;
    const perSecond = new Map<number, number>();
    for (const t of endedAt) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
    const sorted = [...reopen].sort((a, b) => a - b);
    return {
      workers: label,
      evenAfterMs,
      cv: Math.round(cv(spread) * 1000) / 1000,
      spread,
      ended: endedAt.length,
      hadToMove,
      mostInOneSecond: Math.max(0, ...perSecond.values()),
      mostInAnySecond: mostWithin(endedAt, 1000),
      mostIn100Ms: mostWithin(endedAt, 100),
      reopenP50Ms: sorted[Math.floor(sorted.length / 2)] ?? 0,
      reopenP99Ms: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0,
    };
  } finally {
    stopping = true;
    for (const c of calls) c.cancel();
    clients.forEach((c) => c.close());
    await lb.stop();
    await Promise.all(backends.map((b) => b.stop()));
  }
}

export async function streamsScenario(rounds: number, log: (line: string) => void): Promise<StreamsRow[]> {
  const rows: StreamsRow[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const [args, label] of [[['--workers', '1'], '1'], [[], 'default']] as const) {
      const row = await once([...args], label);
      log(`streams r${r + 1} workers ${label}: even (cv ${row.cv}) after ${row.evenAfterMs} ms, ended ${row.ended} of ${row.hadToMove} that had to move, at most ${row.mostInOneSecond} in one calendar second, ${row.mostInAnySecond} in any 1,000 ms, ${row.mostIn100Ms} in any 100 ms, re-open p50 ${row.reopenP50Ms} ms p99 ${row.reopenP99Ms} ms`);
      rows.push(row);
    }
  }
  return rows;
}

export function streamsTable(rows: StreamsRow[]): string {
  let out = '### Long-lived streams: 300 subscriptions, 3 -> 6 backends, streams.rebalance { tolerancePercent: 10, maxPerSecond: 20, minAgeMs: 1000 }\n\n';
  out += '| workers | even after ms | cv | spread | ended / had to move | most in a calendar second | in any 1,000 ms | in any 100 ms | re-open p50 ms | re-open p99 ms |\n|---|---:|---:|---|---:|---:|---:|---:|---:|---:|\n';
  for (const r of rows) out += `| ${r.workers} | ${r.evenAfterMs} | ${r.cv} | ${r.spread.join(' ')} | ${r.ended} / ${r.hadToMove} | ${r.mostInOneSecond} | ${r.mostInAnySecond} | ${r.mostIn100Ms} | ${r.reopenP50Ms} | ${r.reopenP99Ms} |\n`;
  return out;
}
