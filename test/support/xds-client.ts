/**
 * A proxyless gRPC client process (test/fixtures/xds-client-main.ts) for the xDS e2e tests: its
 * bootstrap points at an admin, and each `calls()` makes sequential Echo/Unary calls on an
 * xds:/// target, on a channel kept for the process's life.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { createInterface } from 'node:readline';

const MAIN = path.resolve(process.cwd(), 'dist/test/fixtures/xds-client-main.js');
const running = new Set<ChildProcess>();

export interface CallsResult {
  backends: Record<string, number>;
  errors: Record<string, number>;
  lastError: string | null;
}

export interface XdsClientProcess {
  calls(target: string, calls: number, options?: { headers?: Record<string, string>; deadlineMs?: number }): Promise<CallsResult>;
  stop(): void;
  readonly stderr: string[];
}

export function killXdsClients(): void {
  for (const p of running) p.kill('SIGKILL');
  running.clear();
}

/** Starts a client whose bootstrap is `bootstrap` (an object, as `switchboard xds-bootstrap` prints it). */
export async function startXdsClient(bootstrap: unknown): Promise<XdsClientProcess> {
  const proc = spawn(process.execPath, [MAIN], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap) } });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  const stderr: string[] = [];
  proc.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 200) stderr.push(d.toString());
  });
  const waiting = new Map<number, { resolve: (r: CallsResult) => void; reject: (e: Error) => void }>();
  proc.once('exit', (code) => {
    for (const w of waiting.values()) w.reject(new Error(`the xDS client exited (${code}): ${stderr.join('').slice(-2000)}`));
    waiting.clear();
  });
  let ready: () => void = () => {};
  const started = new Promise<void>((resolve) => (ready = resolve));
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const msg = JSON.parse(line) as { ready?: boolean; id?: number } & CallsResult;
    if (msg.ready) return ready();
    waiting.get(msg.id!)?.resolve(msg);
    waiting.delete(msg.id!);
  });
  await started;
  let next = 0;
  return {
    stderr,
    calls(target, calls, options = {}) {
      const id = ++next;
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        proc.stdin!.write(`${JSON.stringify({ id, target, calls, ...options })}\n`);
      });
    },
    stop() {
      proc.kill('SIGKILL');
    },
  };
}
