/**
 * Hedging under load (issue 26): `npm run bench:hedge-safety [-- --seconds 10]`, all on 127.0.0.1.
 *
 * The seed stall of the tail bench (3 backends of 4 slots, exponential 10 ms service, one
 * freezing 1.5 s every 5 s; 2 s deadlines, open loop), run at 780 calls/s with `--workers 1`
 * and the default workers, then the overload scenario: the same stall at 1,000 calls/s, beyond
 * what the pool serves while a backend is frozen. Variants: plain least_conn, hedging with the
 * contract's fixed 50 ms delay, and hedging with the adaptive delay. Every row reports p50, p99,
 * p99.9, errors and the calls the backends received (losers included: a cancelled loser that
 * still ran counts here).
 *
 * Each row runs after WARMUP_S (8) s or more of unmeasured load, and starts at the same point
 * between two stalls (bench/stall-phase.ts); `--reverse` runs the variants last to first.
 * Run it from the project to measure this build, or with the working directory at another
 * checkout (built) to measure that one with the same bench: interleave the two for A/B rounds.
 * Writes bench/results/hedge-safety-<time>.json (in this project) and prints a table.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { killAll, poolConfig, spawnBackend, startBalancer, type BackendProcess } from '../test/support/processes';
import { openLoop, type LoadResult } from './load-generator';
import { benchSeed, DEADLINE_MS, PHASE_MS, SERVICE, seeded, STALL, STALL_EVERY_MS, windowStart } from './seed-stall';
import { warmupToPhase } from './stall-phase';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const SECONDS = Number(arg('seconds', '10'));
const LABEL = arg('label', path.basename(process.cwd()));
const OUT = arg('out', path.join(__dirname, '..', '..', 'bench', 'results'));
/** Unmeasured load before each row: a new balancer (and new backends on a scenario's first row) needs 6-8 s at this rate to reach steady latency (bench/README.md, "warm-up counted out"). */
const WARMUP_S = Number(arg('warmup', '8'));
/** `--reverse`: the variants last to first (alternate it between rounds, so no variant always runs on the coldest backends). */
const REVERSE = process.argv.includes('--reverse');
/** `--seed N`: the backends' service-time sequences for this round (seed-stall.ts). */
const SEED = benchSeed();

const FIXED = { maxAttempts: 2, delayMs: 50, nonFatalStatusCodes: ['UNAVAILABLE'], methods: ['*'] };
const ADAPTIVE = { ...FIXED, adaptiveDelay: { percentile: 97, minMs: 10 } };
const VARIANTS: { name: string; pool: Record<string, unknown> }[] = [
  { name: 'least_conn', pool: { algorithm: 'least_conn' } },
  { name: 'least_conn + hedging 50 ms', pool: { algorithm: 'least_conn', hedging: FIXED } },
  { name: 'least_conn + hedging adaptive', pool: { algorithm: 'least_conn', hedging: ADAPTIVE } },
];

interface Row {
  scenario: string;
  workers: string;
  variant: string;
  result: LoadResult;
  backendCalls: number;
}

async function served(backends: BackendProcess[]): Promise<number> {
  return (await Promise.all(backends.map(async (b) => (await b.stats()).calls))).reduce((a, b) => a + b, 0);
}

async function run(scenario: string, rate: number, workers: string[], log: (line: string) => void): Promise<Row[]> {
  const backends = await Promise.all([spawnBackend('steady-1', seeded(SERVICE, SEED, 0)), spawnBackend('steady-2', seeded(SERVICE, SEED, 1)), spawnBackend('odd', seeded(STALL, SEED, 2))]);
  const rows: Row[] = [];
  try {
    for (const v of REVERSE ? [...VARIANTS].reverse() : VARIANTS) {
      const lb = await startBalancer(poolConfig(backends.map((b) => b.address), v.pool), workers);
      // Warm-up (JIT, heap, connections, latency window), to the same point between two stalls for every row.
      await openLoop(lb.listen, rate, warmupToPhase(WARMUP_S, STALL_EVERY_MS, PHASE_MS), 4, {}, DEADLINE_MS);
      const before = await served(backends);
      await windowStart(backends);
      const result = await openLoop(lb.listen, rate, SECONDS, 4, {}, DEADLINE_MS);
      await new Promise((r) => setTimeout(r, 300)); // cancelled losers reach the counters
      const backendCalls = (await served(backends)) - before;
      const w = workers.length > 0 ? workers[1]! : 'default';
      rows.push({ scenario, workers: w, variant: v.name, result, backendCalls });
      log(`${LABEL} ${scenario} workers ${w} ${v.name.padEnd(30)} p50 ${result.p50Ms} p99 ${result.p99Ms} p99.9 ${result.p999Ms} ms, errors ${result.errors}, backend calls ${backendCalls} (${(backendCalls / result.calls).toFixed(3)} per call)`);
      await lb.stop();
    }
  } finally {
    await Promise.all(backends.map((b) => b.kill('SIGKILL')));
  }
  return rows;
}

async function main(): Promise<void> {
  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const rows = [
    ...(await run('stall 780/s', 780, ['--workers', '1'], log)),
    ...(await run('stall 780/s', 780, [], log)),
    ...(await run('overload 1000/s', 1000, [], log)),
  ];
  killAll();
  mkdirSync(OUT, { recursive: true });
  const file = path.join(OUT, `hedge-safety-${LABEL}-${new Date().toISOString().replace(/:/g, '-').slice(0, 19)}.json`);
  writeFileSync(file, `${JSON.stringify({ label: LABEL, seconds: SECONDS, seed: SEED, rows }, null, 1)}\n`);
  log(`wrote ${file}`);
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  killAll();
  process.exit(1);
});
