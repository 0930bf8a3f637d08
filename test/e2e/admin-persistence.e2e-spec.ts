/**
 * The admin's storage: migrations applied on start into a WAL-mode SQLite file, data kept over a
 * restart and over kill -9 in the middle of writes, and the generated bootstrap token.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { afterAll, describe, expect, it } from '@jest/globals';
import Database from 'libsql';
import { killAdmins, startAdmin } from '../support/admin';

afterAll(() => killAdmins());

describe('persistence', () => {
  it('migrates a new file in WAL mode, records the migration, and keeps everything over a restart', async () => {
    const first = await startAdmin();
    await first.api('PUT', '/v1/config', { pools: [{ name: 'p', match: { services: ['*'] }, backends: [{ address: '127.0.0.1:5000' }] }] });
    const token = await first.api('POST', '/v1/tokens', { name: 'reader', scopes: ['read'] });
    expect(await first.stop()).toBe(0);

    const db = new Database(first.dbFile, { readonly: true });
    try {
      expect((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode).toBe('wal');
      const migrations = db.prepare('SELECT migration_name, finished_at FROM _prisma_migrations').all() as { migration_name: string; finished_at: unknown }[];
      expect(migrations.map((m) => m.migration_name)).toEqual(readdirSync('prisma/migrations').filter((n) => /^\d{14}_/.test(n)).sort());
      expect(migrations.every((m) => m.finished_at !== null)).toBe(true);
    } finally {
      db.close();
    }

    const second = await startAdmin({ dataDir: first.dataDir });
    try {
      expect(second.logs.join('\n')).toContain('"applied":[]');
      expect((await second.api('GET', '/v1/config')).body.pools[0].backends).toEqual([{ address: '127.0.0.1:5000', weight: 1, drain: false }]);
      expect((await second.api('GET', '/v1/revisions')).body.items).toHaveLength(1);
      expect((await second.api('GET', '/v1/pools', undefined, { token: token.body.token })).status).toBe(200);
      expect((await second.api('GET', '/readyz', undefined, { token: null })).body).toEqual({ status: 'ready' });
    } finally {
      await second.stop();
    }
  });

  it('survives kill -9 in the middle of writes: every acknowledged write is there and the tables agree with the newest revision', async () => {
    const admin = await startAdmin();
    await admin.api('PUT', '/v1/pools/p', { match: { services: ['*'] } });
    const acknowledged: { address: string; revision: number }[] = [];
    let killed = false;
    const writer = async (w: number): Promise<void> => {
      for (let i = 0; i < 200 && !killed; i++) {
        const address = `127.0.0.1:${10000 + w * 1000 + i}`;
        try {
          const res = await admin.api('PUT', `/v1/pools/p/backends/${address}`, { weight: 1 + (i % 10) });
          if (res.status === 201) acknowledged.push({ address, revision: res.body.revision });
        } catch {
          return; // the connection died with the process
        }
      }
    };
    const writers = Promise.all([0, 1, 2, 3].map(writer));
    while (acknowledged.length < 40) await new Promise((r) => setTimeout(r, 5));
    admin.proc.kill('SIGKILL');
    killed = true;
    await writers;
    await admin.stop();

    const again = await startAdmin({ dataDir: admin.dataDir });
    try {
      const pool = await again.api('GET', '/v1/pools/p');
      const stored = new Set(pool.body.backends.map((b: { address: string }) => b.address));
      for (const a of acknowledged) expect(stored.has(a.address)).toBe(true);
      const newest = (await again.api('GET', '/v1/revisions?limit=1')).body.items[0];
      expect(newest.number).toBeGreaterThanOrEqual(Math.max(...acknowledged.map((a) => a.revision)));
      const rev = await again.api('GET', `/v1/revisions/${newest.number}`);
      expect((await again.api('GET', '/v1/config')).body).toEqual(rev.body.config);
      expect(stored.size).toBe(newest.number - 1);
    } finally {
      await again.stop();
    }
  });
});

describe('bootstrap token', () => {
  it('without SWITCHBOARD_ADMIN_TOKEN one is generated once, logged, and written 0600 to the data folder', async () => {
    const admin = await startAdmin({ adminToken: null });
    const file = `${admin.dataDir}/admin-token`;
    const token = readFileSync(file, 'utf8').trim();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(admin.logs.join('\n')).toContain(token);
    expect((await admin.api('GET', '/v1/tokens', undefined, { token })).status).toBe(200);
    await admin.stop();

    const again = await startAdmin({ dataDir: admin.dataDir, adminToken: null });
    try {
      expect(readFileSync(file, 'utf8').trim()).toBe(token);
      expect(again.logs.join('\n')).not.toContain(token);
      expect((await again.api('GET', '/v1/pools', undefined, { token })).status).toBe(200);
    } finally {
      await again.stop();
    }
  });
});
