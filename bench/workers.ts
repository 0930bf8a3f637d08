/**
 * Issue 13: the data plane on every core. In one run, rounds interleaved so that the machine's
 * noise falls on every target alike: h2load unary calls/s (4 connections x 32 streams) and the
 * proxy's CPU per call (the process and its children) through switchboard --workers 1 and 2, the
 * naive node:http2 relay (the floor) and NGINX with 1 and 2 workers when installed; then how
 * 300 long-lived streams over 2 client connections spread with 2 workers.
 *
 * Two echo backend processes serve the calls, so that one backend core is not the ceiling.
 * Everything shares this machine's cores: h2load, the backends and the proxy.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { echoClient } from '../test/fixtures/echo-proto';
import { awaitLine, poolConfig, spawnBackend, startBalancer, waitFor, type BackendProcess } from '../test/support/processes';
import { cpuMicros, ownCpuMicros } from './cpu';
import { h2load } from './h2load';
import { openLoop, type LoadResult } from './load-generator';
import { nginxAvailable, startNginx } from './nginx';
import { freePort } from '../test/support/processes';
import { median } from './median';

export interface WorkersRow {
  target: string;
  callsPerS: number[];
  cpuUsPerCall: number[];
  /** CPU seconds per wall second of the proxy (and its children) during the run: how many cores it used. */
  cores: number[];
  /** CPU per call of the parent process alone (a multi-worker balancer's primary; NGINX's master). */
  parentUsPerCall: number[];
}

export interface WorkersResult {
  calls: number;
  rounds: number;
  rows: WorkersRow[];
  /** 300 long-lived streams from 2 client connections through --workers 2. */
  spread: { backends: number[]; workers: number[] };
  /** The seed stall scenario (least_conn) with 1 and 2 workers: per-worker counting must keep its tail. */
  stall: { workers: number; result: LoadResult }[];
}

interface Target {
  label: string;
  address: string;
  pid: number;
  stop(): Promise<unknown>;
}

export async function workersScenario(calls: number, rounds: number, stallSeconds: number, log: (line: string) => void): Promise<WorkersResult> {
  const backends = await Promise.all(['fast-1', 'fast-2'].map((n) => spawnBackend(n)));
  const addresses = backends.map((b) => b.address);
  const targets: Target[] = [];
  try {
    for (const n of [1, 2]) {
      const lb = await startBalancer(poolConfig(addresses), ['--workers', String(n)]);
      targets.push({ label: `switchboard --workers ${n}`, address: lb.listen, pid: lb.proc.pid!, stop: () => lb.stop() });
    }
    const relay = spawn(process.execPath, [path.join(__dirname, 'naive-relay.js'), addresses[0]!], { stdio: ['ignore', 'pipe', 'pipe'] });
    const ready = await awaitLine(relay, [], (o) => typeof o.listen === 'string', 'naive relay');
    targets.push({ label: 'naive node:http2 relay (1 backend)', address: String(ready.listen), pid: relay.pid!, stop: async () => relay.kill('SIGKILL') });
    if (nginxAvailable()) {
      for (const n of [1, 2]) {
        const nginx = await startNginx(await freePort(), addresses, 'least_conn', n);
        targets.push({ label: `nginx, ${n} worker${n > 1 ? 's' : ''}`, address: nginx.address, pid: nginx.proc.pid!, stop: () => nginx.stop() });
      }
    }
    for (const t of targets) h2load(t.address, 5_000); // warm-up: connections, JIT
    const rows: WorkersRow[] = targets.map((t) => ({ target: t.label, callsPerS: [], cpuUsPerCall: [], cores: [], parentUsPerCall: [] }));
    for (let r = 0; r < rounds; r++) {
      for (const [i, t] of targets.entries()) {
        const c0 = cpuMicros(t.pid);
        const own0 = ownCpuMicros(t.pid);
        const t0 = performance.now();
        const h = h2load(t.address, calls);
        const wallUs = (performance.now() - t0) * 1000;
        const cpu = cpuMicros(t.pid) - c0;
        const row = rows[i]!;
        row.parentUsPerCall.push(Math.round(((ownCpuMicros(t.pid) - own0) / h.calls) * 10) / 10);
        row.callsPerS.push(h.callsPerS);
        row.cpuUsPerCall.push(Math.round((cpu / h.calls) * 10) / 10);
        row.cores.push(Math.round((cpu / wallUs) * 100) / 100);
        log(`workers round ${r + 1}: ${t.label.padEnd(36)} ${h.callsPerS} calls/s, ${row.cpuUsPerCall.at(-1)} µs CPU/call, ${row.cores.at(-1)} cores`);
      }
    }
    return { calls, rounds, rows, spread: await spread(log), stall: await stall(stallSeconds, rounds, log) };
  } finally {
    for (const t of targets) await t.stop();
    await Promise.all(backends.map((b) => b.kill('SIGKILL')));
  }
}

/**
 * One of three backends (4 slots x 20 ms) freezes 400 ms every 2 s; open loop at 420 calls/s
 * (70%) over 4 client connections; `rounds` rounds with 1 and 2 workers interleaved (the p99 of
 * this scenario moves a lot between runs on a shared machine).
 */
async function stall(seconds: number, rounds: number, log: (line: string) => void): Promise<WorkersResult['stall']> {
  const args = ['--service-ms', '20', '--concurrency', '4'];
  const backends = await Promise.all([spawnBackend('steady-1', args), spawnBackend('steady-2', args), spawnBackend('stalling', [...args, '--stall-every-ms', '2000', '--stall-ms', '400'])]);
  const out: WorkersResult['stall'] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      for (const workers of [1, 2]) {
        const lb = await startBalancer(poolConfig(backends.map((b) => b.address)), ['--workers', String(workers)]);
        await openLoop(lb.listen, 420, 1);
        const result = await openLoop(lb.listen, 420, seconds);
        out.push({ workers, result });
        log(`workers stall round ${r + 1}: --workers ${workers} least_conn p99 ${result.p99Ms} ms, p99.9 ${result.p999Ms} ms, errors ${result.errors}`);
        await lb.stop();
      }
    }
    return out;
  } finally {
    await Promise.all(backends.map((b) => b.kill('SIGKILL')));
  }
}

async function spread(log: (line: string) => void): Promise<WorkersResult['spread']> {
  const backends: BackendProcess[] = await Promise.all(['s1', 's2', 's3'].map((n) => spawnBackend(n)));
  const lb = await startBalancer(poolConfig(backends.map((b) => b.address)), ['--workers', '2']);
  const clients = [echoClient(lb.listen), echoClient(lb.listen)];
  const calls: grpc.ClientReadableStream<unknown>[] = [];
  try {
    // Connected one after the other, as long-lived clients usually are (a burst may land on one worker).
    for (const c of clients) await new Promise((resolve) => c.Unary({}, resolve));
    for (let i = 0; i < 300; i++) {
      const call = clients[i % 2]!.ServerStream({ hang: true });
      call.on('error', () => {});
      calls.push(call);
    }
    type Doc = { pools: { backends: { activeStreams: number }[] }[]; workers: { processes: { activeStreams: number }[] } };
    const state = await waitFor('300 streams', async () => {
      const s = (await lb.state()) as unknown as Doc;
      return s.pools[0]!.backends.reduce((n, b) => n + b.activeStreams, 0) === 300 && s;
    });
    const result = { backends: state.pools[0]!.backends.map((b) => b.activeStreams), workers: state.workers.processes.map((p) => p.activeStreams) };
    log(`workers spread: backends ${result.backends.join('/')}, workers ${result.workers.join('/')}`);
    return result;
  } finally {
    calls.forEach((c) => c.cancel());
    clients.forEach((c) => c.close());
    await lb.stop();
    await Promise.all(backends.map((b) => b.kill('SIGKILL')));
  }
}

export function workersTable(r: WorkersResult): string {
  const lines = [
    `### Workers (issue 13): h2load, ${r.calls} unary calls x ${r.rounds} rounds, 4 connections x 32 streams, rounds interleaved; 2 echo backends`,
    '',
    '| proxy | calls/s (median; rounds) | CPU µs/call (median; rounds) | of which the parent process | cores used (median) |',
    '|---|---|---|---:|---:|',
  ];
  for (const row of r.rows) {
    lines.push(`| ${row.target} | ${median(row.callsPerS)} (${row.callsPerS.join(', ')}) | ${median(row.cpuUsPerCall)} (${row.cpuUsPerCall.join(', ')}) | ${median(row.parentUsPerCall)} | ${median(row.cores)} |`);
  }
  const one = r.rows.find((x) => x.target === 'switchboard --workers 1');
  const two = r.rows.find((x) => x.target === 'switchboard --workers 2');
  const floor = r.rows.find((x) => x.target.startsWith('naive'));
  lines.push('');
  if (one && two) {
    lines.push(`calls/s --workers 2 / --workers 1 = **${(median(two.callsPerS) / median(one.callsPerS)).toFixed(2)}** (target ≥ 1.10)`);
    lines.push(`CPU per call --workers 2 / --workers 1 = **${(median(two.cpuUsPerCall) / median(one.cpuUsPerCall)).toFixed(2)}**`);
  }
  if (one && floor) lines.push(`CPU per call --workers 1 / naive relay = **${(median(one.cpuUsPerCall) / median(floor.cpuUsPerCall)).toFixed(2)}**`);
  lines.push('');
  lines.push(`300 long-lived streams over 2 client connections, --workers 2: backends **${r.spread.backends.join('/')}**, per worker ${r.spread.workers.join('/')}`);
  lines.push('');
  lines.push('Seed stall scenario (one of three backends freezes 400 ms every 2 s; least_conn; open loop at 420 calls/s over 4 client connections):');
  lines.push('');
  lines.push('| workers | calls | errors | p50 ms | p99 ms | p99.9 ms | max ms |');
  lines.push('|---:|---:|---:|---:|---:|---:|---:|');
  for (const { workers, result: x } of r.stall) lines.push(`| ${workers} | ${x.calls} | ${x.errors} | ${x.p50Ms} | ${x.p99Ms} | ${x.p999Ms} | ${x.maxMs} |`);
  const p99 = (w: number): number => median(r.stall.filter((x) => x.workers === w).map((x) => x.result.p99Ms));
  if (r.stall.length > 0) lines.push('', `median p99 --workers 2 / --workers 1 = **${(p99(2) / p99(1)).toFixed(2)}** (${p99(2)} / ${p99(1)} ms)`);
  return lines.join('\n');
}
