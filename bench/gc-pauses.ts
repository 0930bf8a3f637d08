/**
 * Where a call waits inside the balancer (issue 26): `node dist/bench/gc-pauses.js [--rounds 3]
 * [--rate 1000] [--seconds 12] LABEL=ROOT[:NODE_OPTIONS] ...` runs each build (ROOT: a checkout with a built
 * dist/, this one: `.`; `naive`: the naive node:http2 relay, bench/naive-relay.ts) with `--workers 1` in front of one fast Echo backend, at a fixed open-loop
 * rate, in interleaved rounds, and reports the GC pauses by kind and the event-loop delay the
 * balancer's own process saw (bench/gc-probe.ts, preloaded) over the measured window, with the
 * client's p50 and p99 and the balancer's CPU per call. All on 127.0.0.1. Prints one line per build and round, and writes
 * bench/results/gc-pauses-<time>.json.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { awaitLine, killAll, poolConfig, spawnBackend, writeTempConfig } from '../test/support/processes';
import { openLoop, type LoadResult } from './load-generator';
import { numberArg, targetArgs, type Target } from './cli-args';
import { median } from './median';
import { ownCpuMicros } from './cpu';

const ROUNDS = numberArg('rounds', 3);
const RATE = numberArg('rate', 1000);
const SECONDS = numberArg('seconds', 12);
const PROBE = path.join(__dirname, 'gc-probe.js');

interface Probe {
  eventLoopDelayMs: { p50: number; p99: number; p999: number; max: number };
  gcPausesMs: Record<string, number[]>;
}

interface Row {
  label: string;
  round: number;
  client: Pick<LoadResult, 'calls' | 'errors' | 'p50Ms' | 'p99Ms' | 'p999Ms'>;
  /** The balancer process's own CPU (user + system, every thread) over the window, per call. */
  cpuMicrosPerCall: number;
  probe: Probe;
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const pausesText = (xs: number[]): string => `${xs.length} x p50 ${median(xs).toFixed(1)} max ${Math.max(0, ...xs).toFixed(1)} total ${sum(xs).toFixed(0)} ms`;

async function measure({ root, nodeOptions }: Target, backend: string, configFile: string, out: string): Promise<{ client: LoadResult; cpuMicrosPerCall: number; probe: Probe }> {
  const naive = root === 'naive';
  const args = naive
    ? [path.join(__dirname, 'naive-relay.js'), backend]
    : [path.resolve(root, 'bin/switchboard.js'), 'balancer', '--workers', '1', '--listen', '127.0.0.1:0', '--ops', '127.0.0.1:0', '--config', configFile];
  const proc = spawn(process.execPath, ['-r', PROBE, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GC_PROBE_OUT: out, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) },
  });
  const ready = await awaitLine(proc, [], (o) => (naive ? typeof o.listen === 'string' : o.msg === 'balancer listening'), root);
  const listen = String(ready.listen);
  await openLoop(listen, RATE, 2, 4, {}, 2000); // warm-up: JIT, heap, connections
  proc.kill('SIGUSR2');
  const cpu0 = ownCpuMicros(proc.pid!);
  const client = await openLoop(listen, RATE, SECONDS, 4, {}, 2000);
  const cpuMicrosPerCall = (ownCpuMicros(proc.pid!) - cpu0) / client.calls;
  await new Promise<void>((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
  return { client, cpuMicrosPerCall, probe: JSON.parse(readFileSync(out, 'utf8')) as Probe };
}

async function main(): Promise<void> {
  const targets = targetArgs();
  if (targets.length === 0) throw new Error('usage: gc-pauses.js [--rounds 3] [--rate 1000] [--seconds 12] LABEL=ROOT[:NODE_OPTIONS] ...');
  const backend = await spawnBackend('gc');
  const configFile = writeTempConfig(poolConfig([backend.address]));
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-gc-'));
  const rows: Row[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of targets) {
        const { client, cpuMicrosPerCall, probe } = await measure(t, backend.address, configFile, path.join(dir, `${t.label}-${round}.json`));
        rows.push({ label: t.label, round, client: { calls: client.calls, errors: client.errors, p50Ms: client.p50Ms, p99Ms: client.p99Ms, p999Ms: client.p999Ms }, cpuMicrosPerCall, probe });
        const d = probe.eventLoopDelayMs;
        const g = probe.gcPausesMs;
        process.stdout.write(
          `r${round} ${t.label.padEnd(10)} client p50 ${client.p50Ms} p99 ${client.p99Ms} ms, errors ${client.errors}; CPU ${cpuMicrosPerCall.toFixed(0)} µs/call; event-loop delay p99 ${d.p99} p99.9 ${d.p999} max ${d.max} ms; scavenges ${pausesText(g.scavenge!)}; mark-compacts ${pausesText(g.markCompact!)}\n`,
        );
      }
    }
  } finally {
    await backend.kill('SIGKILL');
    killAll();
  }
  const dirOut = path.join(__dirname, '..', '..', 'bench', 'results');
  mkdirSync(dirOut, { recursive: true });
  const file = path.join(dirOut, `gc-pauses-${new Date().toISOString().replace(/:/g, '-').slice(0, 19)}.json`);
  writeFileSync(file, `${JSON.stringify({ rate: RATE, seconds: SECONDS, rows }, null, 1)}\n`);
  process.stdout.write(`wrote ${file}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  killAll();
  process.exit(1);
});
