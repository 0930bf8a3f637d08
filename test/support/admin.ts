/**
 * The real admin service for end-to-end tests: `switchboard admin` from the built CLI, on
 * 127.0.0.1 with a kernel-chosen port and its own temporary SQLite file, and a small HTTP
 * client for its REST API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { awaitLine } from './processes';
import { createDatabase } from './postgres';

const CLI = path.join(process.cwd(), 'bin/switchboard.js');
export const ADMIN_TOKEN = 'sbt_test_bootstrap_admin_token';

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  contentType: string;
}

export interface AdminProcess {
  readonly url: string;
  readonly grpc: string;
  /** The SQLite file (empty when the admin runs on PostgreSQL). */
  readonly dbFile: string;
  /** What --db was. */
  readonly db: string;
  readonly dataDir: string;
  readonly proc: ChildProcess;
  readonly logs: string[];
  /** Sends a request with the bootstrap admin token unless `token` is given (null: no token). */
  api<T = any>(method: string, p: string, body?: unknown, opts?: { token?: string | null; headers?: Record<string, string>; raw?: string }): Promise<ApiResponse<T>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<ChildProcess>();
export function killAdmins(): void {
  for (const p of running) p.kill('SIGKILL');
  running.clear();
}

export interface AdminStartOptions {
  dataDir?: string;
  /** --db; default: a SQLite file in dataDir, or a new database when SWITCHBOARD_TEST_POSTGRES is set. */
  db?: string;
  adminToken?: string | null;
  args?: string[];
  env?: Record<string, string>;
}

export async function startAdmin(options: AdminStartOptions = {}): Promise<AdminProcess> {
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), 'switchboard-admin-'));
  const postgres = process.env.SWITCHBOARD_TEST_POSTGRES;
  const db = options.db ?? (postgres && !options.dataDir ? await createDatabase(postgres) : `file:${path.join(dataDir, 'switchboard.db')}`);
  const dbFile = db.startsWith('file:') ? db.slice('file:'.length) : '';
  const env: Record<string, string | undefined> = { ...process.env, ...options.env };
  delete env.SWITCHBOARD_ADMIN_TOKEN;
  if (options.adminToken !== null) env.SWITCHBOARD_ADMIN_TOKEN = options.adminToken ?? ADMIN_TOKEN;
  const proc = spawn(process.execPath, [CLI, 'admin', '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--db', db, '--log-level', 'debug', ...(options.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: dataDir, // with PostgreSQL a generated token goes to ./data: keep it in the temporary folder
    env,
  });
  running.add(proc);
  proc.once('exit', () => running.delete(proc));
  const logs: string[] = [];
  const ready = await awaitLine(proc, logs, (o) => o.msg === 'admin listening', 'admin', 20_000);
  const url = `http://${String(ready.http)}`;
  const token = options.adminToken === null ? undefined : (options.adminToken ?? ADMIN_TOKEN);
  return {
    url,
    grpc: String(ready.grpc ?? ''),
    dbFile,
    db,
    dataDir,
    proc,
    logs,
    async api(method, p, body, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      const bearer = opts.token === undefined ? token : opts.token;
      if (bearer) headers.authorization = `Bearer ${bearer}`;
      let payload: string | undefined = opts.raw;
      if (body !== undefined) payload = JSON.stringify(body);
      if (payload !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
      const res = await fetch(url + p, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
      const text = await res.text();
      const contentType = res.headers.get('content-type') ?? '';
      return { status: res.status, headers: res.headers, contentType, body: contentType.includes('json') && text ? JSON.parse(text) : text };
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
