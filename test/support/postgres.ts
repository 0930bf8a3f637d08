/**
 * PostgreSQL for tests, on 127.0.0.1 only: a throwaway cluster (Debian's postgresql binaries,
 * initdb + pg_ctl in a temporary folder, trust authentication on loopback, run as the
 * `postgres` user when we are root) and a fresh database per admin.
 *
 * SWITCHBOARD_TEST_POSTGRES=postgresql://USER@127.0.0.1:PORT/postgres makes startAdmin put every
 * admin on its own new database of that server (`npm run test:postgres` sets it).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { freePort } from './processes';

export interface PostgresCluster {
  /** postgresql://postgres@127.0.0.1:PORT/postgres */
  readonly url: string;
  stop(): void;
  /** Stops the server at once (an outage) and, with `restart`, starts it again on the same data and port. */
  outage(): void;
  restart(): void;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort() : [];
  const dir = versions.length > 0 ? path.join(root, versions[versions.length - 1]!, 'bin') : '';
  if (!dir || !existsSync(path.join(dir, 'initdb'))) throw new Error('PostgreSQL is not installed (apt-get install postgresql)');
  return dir;
}

/** Starts a new cluster; stop() removes it. */
export async function startPostgres(): Promise<PostgresCluster> {
  const bin = binDir();
  const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-pg-'));
  const root = process.getuid?.() === 0;
  if (root) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const run = (cmd: string, args: string[]): void => {
    const r = root ? spawnSync('runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args], { encoding: 'utf8' }) : spawnSync(path.join(bin, cmd), args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr || r.stdout}`);
  };
  const user = root ? 'postgres' : (process.env.USER ?? 'postgres');
  run('initdb', ['-D', path.join(dir, 'data'), '-A', 'trust', '-U', user, '--no-sync']);
  const port = await freePort();
  const start = (): void => run('pg_ctl', ['-D', path.join(dir, 'data'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, '-l', path.join(dir, 'log'), '-w', 'start']);
  start();
  return {
    url: `postgresql://${user}@127.0.0.1:${port}/postgres`,
    outage: () => run('pg_ctl', ['-D', path.join(dir, 'data'), '-m', 'immediate', 'stop']),
    restart: start,
    stop: () => {
      try {
        run('pg_ctl', ['-D', path.join(dir, 'data'), '-m', 'immediate', 'stop']);
      } catch {
        /* already stopped */
      }
    },
  };
}

/** A new, empty database on the server of `baseUrl`; its URL. */
export async function createDatabase(baseUrl: string): Promise<string> {
  const name = `switchboard_${randomBytes(6).toString('hex')}`;
  const client = new Client({ connectionString: baseUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
