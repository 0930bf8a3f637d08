/**
 * The admin on PostgreSQL (`--db postgresql://...`), against a real throwaway PostgreSQL server
 * on 127.0.0.1 (Debian's postgresql, started by the test): migrations applied and recorded,
 * writes and revisions that survive a restart and a kill -9, admins that start together on one
 * fresh database, and clear refusals of what cannot work.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client } from 'pg';
import { killAdmins, startAdmin } from '../support/admin';
import { killAll, sleep, startNode, waitFor } from '../support/processes';
import { startEchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { unary } from '../support/grpc';
import { runCli } from '../support/cli';
import { nodesSurviveRestart } from '../support/node-table';
import { createDatabase, startPostgres, type PostgresCluster } from '../support/postgres';

let pg: PostgresCluster;
beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);
afterAll(() => {
  killAll();
  killAdmins();
  pg?.stop();
});

const POOL = { name: 'greeter', match: { services: ['helloworld.Greeter'] }, backends: [{ address: '127.0.0.1:50051' }, { address: '127.0.0.1:50052', weight: 2 }] };

describe('the admin on PostgreSQL', () => {
  it('migrates a new database, serves writes and revisions, and keeps them across a restart and a kill -9', async () => {
    const db = await createDatabase(pg.url);
    const first = await startAdmin({ db });
    expect((await first.api('GET', '/readyz', undefined, { token: null })).body).toEqual({ status: 'ready' });
    expect((await first.api('PUT', '/v1/pools/greeter', POOL)).status).toBe(201);
    expect((await first.api('PATCH', '/v1/pools/greeter/backends/127.0.0.1%3A50051', { drain: true })).status).toBe(200);
    const before = (await first.api('GET', '/v1/config')).body;
    await first.stop();

    const second = await startAdmin({ db, dataDir: first.dataDir });
    expect((await second.api('GET', '/v1/config')).body).toEqual(before);
    expect((await second.api('GET', '/v1/revisions')).body.items.map((r: { number: number }) => r.number)).toEqual([2, 1]);
    expect((await second.api('POST', '/v1/revisions/1/rollback')).body).toMatchObject({ revision: 3, changed: true });
    await second.stop('SIGKILL');

    const third = await startAdmin({ db, dataDir: first.dataDir });
    expect((await third.api('GET', '/v1/pools/greeter')).body.backends[0].drain).toBe(false);
    expect((await third.api('GET', '/v1/revisions?limit=1')).body.items[0].number).toBe(3);
    // Recorded like Prisma's own migrate: one finished row per migration.
    const client = new Client({ connectionString: db });
    await client.connect();
    const rows = (await client.query('SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL')).rows;
    await client.end();
    expect(rows.map((r) => r.migration_name).sort()).toEqual(readdirSync('prisma/postgresql/migrations').filter((n) => /^\d{14}_/.test(n)).sort());
    await third.stop();
  }, 60_000);

  it('node state written behind (multi-row upserts in raw SQL) survives a restart exactly, hostile NACK reasons included', async () => {
    const db = await createDatabase(pg.url);
    await nodesSurviveRestart(await startAdmin({ db }), (first) => startAdmin({ db, dataDir: first.dataDir }), () => {});
  }, 60_000);

  it('three admins starting together on one new database migrate it once', async () => {
    const db = await createDatabase(pg.url);
    const admins = await Promise.all([0, 1, 2].map(() => startAdmin({ db })));
    for (const a of admins) expect((await a.api('GET', '/readyz', undefined, { token: null })).status).toBe(200);
    const applied = admins.map((a) => (a.logs.map((l) => JSON.parse(l) as { msg?: string; applied?: string[] }).find((o) => o.msg === 'database ready')?.applied ?? []).length);
    // One of them applies every committed migration; the others find nothing left to do.
    const committed = readdirSync('prisma/postgresql/migrations').filter((n) => /^\d{14}_/.test(n)).length;
    expect(applied.sort()).toEqual([0, 0, committed]);
    await Promise.all(admins.map((a) => a.stop()));
  }, 60_000);

  it('two admins on one database: each catches up with the other\'s commits and pushes them to its balancers; If-Match has one winner across both, revisions stay gap-free', async () => {
    const db = await createDatabase(pg.url);
    const a = await startAdmin({ db });
    const b = await startAdmin({ db });
    const nodeToken = (await a.api('POST', '/v1/tokens', { name: 'edge', scopes: ['node'] })).body.token as string;
    const node = await startNode(b.grpc, { nodeId: 'edge-b', token: nodeToken });
    await waitFor('the balancer connected to b', async () => (await b.api('GET', '/v1/nodes')).body.items.some((n: { connected: boolean }) => n.connected), 5000);
    expect((await a.api('PUT', '/v1/pools/greeter', POOL)).status).toBe(201);
    const written = Date.now();
    // b learns of a's commit (NOTIFY), and its balancer applies it.
    await waitFor('b\'s balancer to apply revision 1', async () => (await node.state()).revision === 1, 5000);
    process.stdout.write(`admin-postgres: a write through admin a reached admin b's balancer in about ${Date.now() - written} ms (polled every 25 ms)\n`);
    expect((await b.api('GET', '/v1/config')).body.pools.length).toBe(1);

    // 10 PATCHes through each admin, all with the ETag read before any of them.
    const etag = (await a.api('GET', '/v1/pools/greeter')).headers.get('etag')!;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 === 0 ? a : b).api('PATCH', '/v1/pools/greeter', { slowStartMs: 1000 + i }, { headers: { 'if-match': etag } }),
      ),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s !== 200).every((s) => s === 412 || s === 409)).toBe(true);
    // Writes without If-Match through both: every one lands, numbered once.
    const more = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).api('PATCH', '/v1/pools/greeter', { queueTimeoutMs: 100 + i })));
    const landed = more.filter((r) => r.status === 200).length;
    expect(more.every((r) => r.status === 200 || r.status === 409)).toBe(true);
    const numbers = (await a.api('GET', '/v1/revisions?limit=100')).body.items.map((r: { number: number }) => r.number) as number[];
    expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, i) => numbers.length - i)); // n, n-1, ..., 1: no gap, no duplicate
    expect(numbers.length).toBe(1 + 1 + landed);
    // The same token name created through both at once: one is created, the other is told it exists.
    const created = await Promise.all([a, b].map((x) => x.api('POST', '/v1/tokens', { name: 'twice', scopes: ['read'] })));
    expect(created.map((r) => r.status).sort()).toEqual([201, 409]);
    await waitFor('both admins agree', async () => JSON.stringify((await a.api('GET', '/v1/config')).body) === JSON.stringify((await b.api('GET', '/v1/config')).body), 5000);
    await node.stop();
    await Promise.all([a.stop(), b.stop()]);
  }, 60_000);

  it('a commit whose notification never came is caught up with by the periodic look (within about 1.25 s)', async () => {
    const db = await createDatabase(pg.url);
    const a = await startAdmin({ db });
    const b = await startAdmin({ db });
    try {
      expect((await a.api('PUT', '/v1/pools/greeter', POOL)).status).toBe(201);
      await waitFor('b at revision 1', async () => (await b.api('GET', '/v1/config')).body.pools.length === 1, 5000);
      // Revision 2 written straight into the database, as by an admin that died before its NOTIFY.
      const client = new Client({ connectionString: db });
      await client.connect();
      try {
        const patch = { backends: { put: [{ pool: 'greeter', backend: { address: '127.0.0.1:50051', weight: 7, drain: false } }] } };
        await client.query(`INSERT INTO "Revision" (number, author, message, config, patch, diff) VALUES (2, 'sql', 'no notification', NULL, $1, '{"changes":[]}')`, [JSON.stringify(patch)]);
      } finally {
        await client.end();
      }
      const weightOn = async (x: typeof a) => ((await x.api('GET', '/v1/config')).body.pools[0].backends as { address: string; weight: number }[]).find((be) => be.address === '127.0.0.1:50051')!.weight;
      await waitFor('both admins at revision 2', async () => (await weightOn(a)) === 7 && (await weightOn(b)) === 7, 5000);
      expect((await b.api('PATCH', '/v1/pools/greeter', { slowStartMs: 500 })).status).toBe(200); // and writes go on from it
      expect((await a.api('GET', '/v1/revisions?limit=1')).body.items[0].number).toBe(3);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 30_000);

  it('a balancer given both admins fails over when its admin dies, under traffic, with no failed call', async () => {
    const db = await createDatabase(pg.url);
    const a = await startAdmin({ db });
    const b = await startAdmin({ db });
    const backends = await Promise.all(['f1', 'f2'].map((name) => startEchoBackend({ name })));
    const nodeToken = (await a.api('POST', '/v1/tokens', { name: 'edge', scopes: ['node'] })).body.token as string;
    expect((await a.api('PUT', '/v1/pools/echo', { name: 'echo', match: { services: ['*'] }, backends: backends.map((x) => ({ address: x.address })) })).status).toBe(201);
    await waitFor('b to know the token', async () => (await b.api('GET', '/v1/tokens')).body.items.some((t: { name: string }) => t.name === 'edge'), 5000);
    const node = await startNode(`${a.grpc},${b.grpc}`, { nodeId: 'edge-ab', token: nodeToken });
    await waitFor('the balancer on revision 1', async () => (await node.state()).revision === 1, 5000);
    const client = echoClient(node.listen);
    let calls = 0;
    const failures: string[] = [];
    let running = true;
    const traffic = (async () => {
      while (running && calls < 20_000) {
        const r = await unary(client, {});
        calls++;
        if (r.error) failures.push(r.error.message);
      }
    })();
    try {
      await sleep(300);
      await a.stop('SIGKILL');
      await waitFor('the balancer connected to admin b', async () => (await b.api('GET', '/v1/nodes')).body.items.some((n: { nodeId: string; connected: boolean }) => n.nodeId === 'edge-ab' && n.connected), 15_000);
      // A change through b reaches it.
      expect((await b.api('PATCH', `/v1/pools/echo/backends/${encodeURIComponent(backends[0]!.address)}`, { drain: true })).status).toBe(200);
      await waitFor('the balancer on revision 2', async () => (await node.state()).revision === 2, 5000);
      await sleep(300);
    } finally {
      running = false;
      await traffic;
      client.close();
    }
    expect(calls).toBeGreaterThan(50);
    expect(failures).toEqual([]);
    expect(node.logs.some((l) => l.includes('connected to the admin') && l.includes(b.grpc))).toBe(true);
    await node.stop();
    await b.stop();
    await Promise.all(backends.map((x) => x.stop()));
  }, 60_000);

  it('a 10,000-backend configuration (1,000 pools) is written in one transaction, and exported, planned and applied back with no change', async () => {
    const admin = await startAdmin({ db: await createDatabase(pg.url) });
    const big = {
      healthPolicies: [],
      pools: Array.from({ length: 1000 }, (_, p) => ({ name: `p-${p}`, match: { services: [`big.Service${p}`] }, backends: Array.from({ length: 10 }, (_, b) => ({ address: `127.0.0.1:${20000 + b}` })) })),
    };
    // Thousands of rows take longer than Prisma's 5 s default transaction timeout on PostgreSQL (this was a 500).
    const put = await admin.api('PUT', '/v1/config', big);
    expect(put.status).toBe(200);
    expect(put.body.revision).toBe(1);
    const exported = (await admin.api('GET', '/v1/config')).body;
    expect(exported.pools).toHaveLength(1000);
    expect((await admin.api('POST', '/v1/config/plan', exported)).body.changes).toEqual([]);
    const again = await admin.api('PUT', '/v1/config', exported);
    expect(again.body).toMatchObject({ revision: 1, changed: false });
    expect((await admin.api('GET', '/v1/revisions')).body.items).toHaveLength(1);
    await admin.stop();
  }, 90_000);

  it('the committed migrations build exactly the schema of prisma/postgresql/schema.prisma, whose models are those of the SQLite schema', async () => {
    // The same models in both schema files (a Prisma schema has one provider, so there are two).
    const models = (file: string): string[] => [...readFileSync(file, 'utf8').replace(/\/\/.*$/gm, '').matchAll(/model \w+ \{[^}]*\}/g)].map((m) => m[0].replace(/\s+/g, ' '));
    expect(models('prisma/postgresql/schema.prisma')).toEqual(models('prisma/schema.prisma'));
    expect(models('prisma/schema.prisma').length).toBeGreaterThan(4);
    // A database migrated by the admin, and one made straight from the schema by Prisma's engine.
    const migrated = await createDatabase(pg.url);
    const admin = await startAdmin({ db: migrated });
    await admin.stop();
    const fromSchema = await createDatabase(pg.url);
    const sql = execFileSync(process.execPath, ['scripts/prisma-postgres-sql.mjs', fromSchema]).toString();
    const catalog = async (url: string): Promise<unknown> => {
      const client = new Client({ connectionString: url });
      client.on('error', () => {});
      await client.connect();
      try {
        if (url === fromSchema) await client.query(sql);
        const columns = (await client.query("SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_prisma_migrations' ORDER BY 1, 2")).rows;
        const indexes = (await client.query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> '_prisma_migrations' ORDER BY 1")).rows;
        const constraints = (await client.query("SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> '_prisma_migrations' ORDER BY 1")).rows;
        return { columns, indexes, constraints };
      } finally {
        await client.end();
      }
    };
    const a = await catalog(migrated);
    expect(await catalog(fromSchema)).toEqual(a);
    expect((a as { columns: unknown[] }).columns.length).toBeGreaterThan(20);
  }, 60_000);

  it('an unreachable server or a URL without a database stops the admin at start with a clear message', async () => {
    const down = await runCli(['admin', '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--db', 'postgresql://postgres@127.0.0.1:1/nothing'], { SWITCHBOARD_ADMIN_TOKEN: 'sbt_unused_token_for_this_test' }, 30_000);
    expect(down.code).toBe(1);
    expect(down.stderr + down.stdout).toMatch(/ECONNREFUSED|connect/);
    const noDb = await runCli(['admin', '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--db', 'postgresql://postgres@127.0.0.1:5432'], { SWITCHBOARD_ADMIN_TOKEN: 'sbt_unused_token_for_this_test' });
    expect(noDb.code).toBe(1);
    expect(noDb.stderr + noDb.stdout).toContain('needs a host and a database name');
  }, 60_000);
});
