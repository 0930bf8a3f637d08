/**
 * `node dist/bench/cpu-per-call.js [--calls 60000] [--rounds 3] [--node LABEL=NODE_BINARY] LABEL=ROOT[:NODE_OPTIONS] ...`:
 * the balancer's CPU per proxied unary call (h2load, 4 connections x 32 streams, one fast Echo
 * backend) for several builds side by side in one run, rounds interleaved so that the machine's
 * noise falls on all of them alike. ROOT is a checkout with a built dist/ (this one: `.`).
 * `--node LABEL=PATH` runs that target's balancer on another Node binary (Node 20 against 24).
 * A target `LABEL=naive` is the naive node:http2 relay (bench/naive-relay.ts), the floor the
 * issue measures against, in the same interleaved rounds.
 * Prints µs of CPU per call for each, and the ratio to the first.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { cpuMicros } from './cpu';
import { h2load, h2loadAvailable } from './h2load';
import { awaitLine, killAll, spawnBackend, writeTempConfig, poolConfig } from '../test/support/processes';
import { numberArg, targetArgs } from './cli-args';
import { median } from './median';



async function main(): Promise<void> {
  if (!h2loadAvailable()) throw new Error('h2load is not installed (apt-get install nghttp2-client)');
  const nodeArgs = process.argv.flatMap((a, i) => (process.argv[i - 1] === '--node' ? [a] : []));
  const nodeFor = new Map(nodeArgs.map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
  const targets = targetArgs(['--node']);
  const calls = numberArg('calls', 60_000);
  const rounds = numberArg('rounds', 3);
  const backend = await spawnBackend('cpu');
  const configFile = writeTempConfig(poolConfig([backend.address]));
  const balancers: { label: string; listen: string; pid: number; micros: number[] }[] = [];
  for (const { label, root, nodeOptions } of targets) {
    const naive = root === 'naive';
    const args = naive
      ? [path.join(__dirname, 'naive-relay.js'), backend.address]
      : [path.resolve(root, 'bin/switchboard.js'), 'balancer', '--listen', '127.0.0.1:0', '--ops', '127.0.0.1:0', '--config', configFile];
    const proc = spawn(nodeFor.get(label) ?? process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) },
    });
    const ready = await awaitLine(proc, [], (o) => (naive ? typeof o.listen === 'string' : o.msg === 'balancer listening'), label);
    balancers.push({ label, listen: String(ready.listen), pid: proc.pid!, micros: [] });
    h2load(String(ready.listen), 5000); // warm-up
  }
  for (let r = 0; r < rounds; r++) {
    for (const b of balancers) {
      const c0 = cpuMicros(b.pid);
      const result = h2load(b.listen, calls);
      b.micros.push((cpuMicros(b.pid) - c0) / result.calls);
    }
  }
  const base = median(balancers[0]!.micros);
  for (const b of balancers) {
    const m = median(b.micros);
    process.stdout.write(`${b.label.padEnd(24)} ${m.toFixed(1)} µs CPU/call (rounds: ${b.micros.map((x) => x.toFixed(1)).join(', ')}), ratio ${(m / base).toFixed(3)}\n`);
  }
  killAll();
  for (const b of balancers) process.kill(b.pid, 'SIGKILL');
  await backend.kill();
  process.exit(0);
}

void main();
