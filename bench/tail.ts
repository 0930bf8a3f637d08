/**
 * The tail benchmark of issue 12 (`npm run bench -- --only tail`), all on 127.0.0.1:
 *
 * - seed stall: three backends of 4 service slots with exponential 10 ms service times (400
 *   calls/s each), one of which blocks its event loop for 1.5 s every 5 s like a garbage
 *   collecting node; 780 calls/s open loop (65% of capacity), 2 s deadlines, latency counted
 *   from each call's intended send time;
 * - seed slow: the same, but one backend is 4x slower (40 ms mean) and never stalls.
 *
 * Every variant runs against the same backend processes in the same run: least_conn,
 * least_conn + hedging (adaptive delay), least_response_time and p2c, and NGINX least_conn
 * when installed. Backends report what they served (SIGUSR2), so each backend's share and the
 * extra backend calls that hedges cost are counted where the work happens.
 */
import { freePort, spawnBackend, poolConfig, startBalancer, type BackendProcess } from '../test/support/processes';
import { openLoop, type LoadResult } from './load-generator';
import { nginxAvailable, startNginx } from './nginx';
import { benchSeed, DEADLINE_MS, PHASE_MS, SERVICE, seeded, STALL, STALL_EVERY_MS, windowStart } from './seed-stall';
import { warmupToPhase } from './stall-phase';

export interface TailRow {
  scenario: string;
  variant: string;
  result: LoadResult;
  /** Calls each backend received (the stalling or slow one last). */
  backendCalls: number[];
  /** Backend calls beyond the calls the clients sent, as a share of those. */
  extraLoad: number;
}

const RATE = 780;

interface Variant {
  name: string;
  pool?: Record<string, unknown>;
  nginx?: boolean;
}

/** Hedge after the pool's p97 of time to response headers (at least 10 ms), at most one hedge a call. */
export const HEDGING = { maxAttempts: 2, delayMs: 50, adaptiveDelay: { percentile: 97, minMs: 10 }, methods: ['*'], nonFatalStatusCodes: ['UNAVAILABLE'] };

const VARIANTS: Variant[] = [
  { name: 'least_conn', pool: { algorithm: 'least_conn' } },
  { name: 'least_conn + hedging', pool: { algorithm: 'least_conn', hedging: HEDGING } },
  { name: 'least_response_time', pool: { algorithm: 'least_response_time' } },
  { name: 'least_response_time + hedging', pool: { algorithm: 'least_response_time', hedging: HEDGING } },
  { name: 'p2c', pool: { algorithm: 'p2c' } },
  { name: 'nginx least_conn', nginx: true },
];

/** `--variants "least_conn,p2c"` runs only those; `--reverse` runs them last to first (alternate it between rounds). */
const only = process.argv.includes('--variants') ? process.argv[process.argv.indexOf('--variants') + 1]!.split(',') : [];
const reverse = process.argv.includes('--reverse');
/** `--seed N`: the backends' service-time sequences for this round (seed-stall.ts). */
const seed = benchSeed();
/**
 * Unmeasured load before each variant. A new Node process (the balancer, and the backends and
 * the load generator on the first variant) takes 6-8 s at this rate to reach steady latency
 * (JIT, heap sizing): measured on a fast backend, the balancer's p50 fell 18.4, 5.8, 3.2, 2.2,
 * 2.0 ms in 2 s steps. With 2 s, the first variant measured part of everyone's warm-up.
 */
const WARMUP_S = 8;

async function served(backends: BackendProcess[]): Promise<number[]> {
  return Promise.all(backends.map(async (b) => (await b.stats()).calls));
}

async function scenario(name: string, odd: string[], seconds: number, log: (line: string) => void): Promise<TailRow[]> {
  const backends = await Promise.all([spawnBackend('steady-1', seeded(SERVICE, seed, 0)), spawnBackend('steady-2', seeded(SERVICE, seed, 1)), spawnBackend('odd', seeded(odd, seed, 2))]);
  const addresses = backends.map((b) => b.address);
  const rows: TailRow[] = [];
  try {
    for (const v of reverse ? [...VARIANTS].reverse() : VARIANTS) {
      if (only.length > 0 && !only.includes(v.name)) continue;
      if (v.nginx && !nginxAvailable()) {
        log(`${name}  ${v.name}: skipped, no nginx on this machine (apt-get install nginx-light)`);
        continue;
      }
      const target = v.nginx ? await startNginx(await freePort(), addresses, 'least_conn') : await startBalancer(poolConfig(addresses, v.pool));
      const address = 'listen' in target ? target.listen : target.address;
      // Warm-up (connections, JIT, heap, latency estimates), to the same point between two stalls for every row.
      await openLoop(address, RATE, warmupToPhase(WARMUP_S, STALL_EVERY_MS, PHASE_MS), 4, {}, DEADLINE_MS);
      const before = await served(backends);
      await windowStart(backends);
      const result = await openLoop(address, RATE, seconds, 4, {}, DEADLINE_MS);
      await new Promise((r) => setTimeout(r, 300)); // cancelled losers reach the backends' counters
      const after = await served(backends);
      const backendCalls = after.map((n, i) => n - before[i]!);
      const extraLoad = Math.round((backendCalls.reduce((a, b) => a + b, 0) / result.calls - 1) * 1000) / 1000;
      rows.push({ scenario: name, variant: v.name, result, backendCalls, extraLoad });
      log(`${name}  ${v.name.padEnd(32)} p50 ${result.p50Ms} p99 ${result.p99Ms} p99.9 ${result.p999Ms} ms, errors ${result.errors}, shares ${backendCalls.join('/')}, extra ${(extraLoad * 100).toFixed(1)}%`);
      await target.stop();
    }
  } finally {
    await Promise.all(backends.map((b) => b.kill('SIGKILL')));
  }
  return rows;
}

export async function tailScenarios(seconds: number, log: (line: string) => void): Promise<TailRow[]> {
  const stall = await scenario('seed stall', STALL, seconds, log);
  const slow = await scenario('seed slow', ['--service-ms', '40', '--concurrency', '4', '--exponential', '--late-headers'], seconds, log);
  return [...stall, ...slow];
}

export function tailTable(rows: TailRow[], seconds: number): string {
  const out: string[] = [];
  for (const name of ['seed stall', 'seed slow']) {
    const rs = rows.filter((r) => r.scenario === name);
    if (rs.length === 0) continue;
    const what = name === 'seed stall' ? 'the third blocks its event loop 1.5 s every 5 s' : 'the third is 4x slower (40 ms mean)';
    out.push(`### Tail, ${name}: 3 backends x 4 slots, exponential 10 ms service; ${what}; ${RATE} calls/s open loop, ${DEADLINE_MS} ms deadlines, ${seconds} s per variant`);
    out.push('');
    out.push('| variant | calls | errors | p50 ms | p99 ms | p99.9 ms | max ms | backend shares (steady/steady/odd) | extra backend calls |');
    out.push('|---|---:|---:|---:|---:|---:|---:|---|---:|');
    for (const r of rs) {
      const x = r.result;
      const total = r.backendCalls.reduce((a, b) => a + b, 0) || 1;
      const shares = r.backendCalls.map((n) => `${((n / total) * 100).toFixed(1)}%`).join(' / ');
      out.push(`| ${r.variant} | ${x.calls} | ${x.errors} | ${x.p50Ms} | ${x.p99Ms} | ${x.p999Ms} | ${x.maxMs} | ${shares} | ${(r.extraLoad * 100).toFixed(1)}% |`);
    }
    const nginx = rs.find((r) => r.variant === 'nginx least_conn');
    const lc = rs.find((r) => r.variant === 'least_conn');
    const ref = nginx ?? lc;
    out.push('');
    if (ref) {
      for (const r of rs) {
        if (r === ref) continue;
        out.push(`- ${r.variant}: p99 / ${ref.variant} p99 = **${(r.result.p99Ms / ref.result.p99Ms).toFixed(2)}**, p99.9 = ${r.result.p999Ms} ms`);
      }
    }
    out.push('');
  }
  return out.join('\n');
}
