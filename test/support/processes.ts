/**
 * Real processes for end-to-end tests: the built `switchboard balancer` CLI and Echo backends,
 * all on 127.0.0.1 with ports chosen by the kernel and read back from the processes' output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as net from 'node:net';
import { createInterface } from 'node:readline';

const ROOT = process.cwd();
const CLI = path.join(ROOT, 'bin/switchboard.js');
const BACKEND_MAIN = path.join(ROOT, 'dist/test/fixtures/echo-backend-main.js');

/** A TCP port on 127.0.0.1 that was free a moment ago (for processes that take a port, not 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(25);
  }
}

/** Reads JSON lines from a child's stdout, resolves with the first line `match` accepts. */
export function awaitLine(proc: ChildProcess, lines: string[], match: (obj: Record<string, unknown>) => boolean, what: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no start-up line within ${timeoutMs} ms\n${lines.join('\n')}`)), timeoutMs);
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (line) => {
      lines.push(line);
      try {
        const obj = JSON.parse(line) as Record<string, unknown>;
        if (match(obj)) {
          clearTimeout(timer);
          resolve(obj);
        }
      } catch {
        /* not JSON */
      }
    });
    proc.stderr!.on('data', (d: Buffer) => lines.push(d.toString()));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code} before starting:\n${lines.join('\n')}`));
    });
  });
}

export interface BalancerProcess {
  readonly listen: string;
  readonly ops: string;
  readonly proc: ChildProcess;
  readonly configFile: string;
  readonly logs: string[];
  state(): Promise<BalancerStateDoc>;
  metrics(): Promise<string>;
  /** Writes a new config file and sends SIGHUP; resolves once /state shows `expectRevision` (default: current + 1). */
  reload(config: unknown, expectRevision?: number): Promise<void>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface BalancerStateDoc {
  revision: number;
  pools: {
    name: string;
    algorithm: string;
    panic: boolean;
    available: number;
    backends: {
      address: string;
      weight: number;
      effectiveWeight: number;
      activeStreams: number;
      totalCalls: number;
      failedCalls: number;
      healthy: boolean;
      ejected: boolean;
      draining: boolean;
      available: boolean;
      sessions: number;
    }[];
  }[];
}

export function writeTempConfig(config: unknown, dir = mkdtempSync(path.join(tmpdir(), 'switchboard-'))): string {
  const file = path.join(dir, 'balancer.yaml');
  writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  return file;
}

const running = new Set<ChildProcess>();

/** Kills whatever a test file left running. Call from afterAll. */
export function killAll(): void {
  for (const p of running) p.kill('SIGKILL');
  running.clear();
}

export async function startBalancer(config: unknown, extraArgs: string[] = []): Promise<BalancerProcess> {
  const configFile = writeTempConfig(config);
  return spawnBalancer(['--config', configFile, ...extraArgs], configFile);
}

export interface NodeOptions {
  nodeId: string;
  token: string;
  stateDir?: string;
  statsIntervalMs?: number;
  extraArgs?: string[];
}

/** A balancer that takes its configuration from the admin's control plane at `adminGrpc`. */
export function startNode(adminGrpc: string, options: NodeOptions): Promise<BalancerProcess & { stateDir: string }> {
  const stateDir = options.stateDir ?? mkdtempSync(path.join(tmpdir(), `switchboard-${options.nodeId}-`));
  const args = ['--admin', adminGrpc, '--node-id', options.nodeId, '--state-dir', stateDir, '--stats-interval-ms', String(options.statsIntervalMs ?? 500), ...(options.extraArgs ?? [])];
  return spawnBalancer(args, '', { SWITCHBOARD_TOKEN: options.token }).then((b) => ({ ...b, stateDir }));
}

async function spawnBalancer(sourceArgs: string[], configFile: string, env: Record<string, string> = {}): Promise<BalancerProcess> {
  // A short drain timeout by default, so a test that leaves a call open does not wait 30 s.
  const args = ['--listen', '127.0.0.1:0', '--ops', '127.0.0.1:0', '--drain-timeout-ms', '2000', ...sourceArgs];
  // Node options for the balancer alone (benches: BENCH_BALANCER_NODE_ARGS="--v8-pool-size=1"), not for the client or backends.
  const nodeArgs = (process.env.BENCH_BALANCER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const proc = spawn(process.execPath, [...nodeArgs, CLI, 'balancer', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  const logs: string[] = [];
  const ready = await awaitLine(proc, logs, (o) => o.msg === 'balancer listening', 'balancer');
  const ops = String(ready.ops);
  const get = async (p: string): Promise<Response> => {
    const res = await fetch(`http://${ops}${p}`, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`${p}: HTTP ${res.status}`);
    return res;
  };
  const state = async (): Promise<BalancerStateDoc> => (await get('/state')).json() as Promise<BalancerStateDoc>;
  return {
    listen: String(ready.listen),
    ops,
    proc,
    configFile,
    logs,
    state,
    metrics: async () => (await get('/metrics')).text(),
    async reload(next, expectRevision) {
      const target = expectRevision ?? (await state()).revision + 1;
      writeFileSync(configFile, typeof next === 'string' ? next : JSON.stringify(next, null, 2));
      proc.kill('SIGHUP');
      await waitFor(`revision ${target}`, async () => (await state()).revision === target);
    },
    stop(signal = 'SIGTERM') {
      return new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode);
        proc.once('exit', (code) => resolve(code));
        proc.kill(signal);
      });
    },
  };
}

export interface BackendProcess {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  readonly proc: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** What the backend counted: calls received, in progress, and cancelled by the caller. */
  stats(): Promise<{ calls: number; active: number; cancelled: number }>;
  /** Restarts a `--seed` backend's service times from its seed, and resolves once it has. */
  reseed(): Promise<void>;
}

/** An Echo backend in its own process, so that it can be killed like a crashing server. */
export async function spawnBackend(name: string, args: string[] = []): Promise<BackendProcess> {
  const proc = spawn(process.execPath, [BACKEND_MAIN, '--name', name, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  const lines: string[] = [];
  const ready = await awaitLine(proc, lines, (o) => o.name === name, `backend ${name}`);
  const port = Number(ready.port);
  return {
    name,
    port,
    address: `127.0.0.1:${port}`,
    proc,
    async stats() {
      const from = lines.length;
      proc.kill('SIGUSR2');
      const line = await waitFor(`stats of ${name}`, () => lines.slice(from).find((l) => l.includes('"stats"')), 5000);
      return (JSON.parse(line) as { stats: { calls: number; active: number; cancelled: number } }).stats;
    },
    async reseed() {
      const from = lines.length;
      proc.kill('SIGHUP');
      await waitFor(`reseed of ${name}`, () => lines.slice(from).find((l) => l.includes('"reseeded"')), 5000);
    },
    kill: (signal = 'SIGKILL') =>
      new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill(signal);
      }),
  };
}

/** A one-pool configuration routing every service to `addresses`. */
export function poolConfig(addresses: string[], extra: Record<string, unknown> = {}): unknown {
  return { pools: [{ name: 'echo', match: { services: ['*'] }, ...extra, backends: addresses.map((address) => ({ address })) }] };
}
