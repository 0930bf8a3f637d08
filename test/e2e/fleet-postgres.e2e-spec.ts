/**
 * One fleet across admins (issue 27): two admins on one real PostgreSQL server (127.0.0.1), with
 * balancers played by control-plane clients on each. Every admin lists every balancer with the
 * admin it is on, `converged` is the fleet's, a node id is one stream across admins, a token
 * made through one admin works on the other at once and its revocation ends streams on both,
 * the last admin token survives two admins revoking at once, an unknown migration stops an
 * admin, NUL characters in NACK reasons are stored, and writes during an outage answer 503.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Client } from 'pg';
import { ADMIN_TOKEN, killAdmins, startAdmin, type AdminProcess } from '../support/admin';
import { connect, type ControlClient } from '../support/control-client';
import { createDatabase, startPostgres, type PostgresCluster } from '../support/postgres';
import { killAll, waitFor } from '../support/processes';

let pg: PostgresCluster;
beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);
afterAll(() => {
  killAll();
  killAdmins();
  pg?.stop();
});

const said = (what: string): void => {
  process.stdout.write(`fleet-postgres: ${what}\n`);
};

const pool = (name: string, port: number): unknown => ({ name, match: { services: [`${name}.Svc`] }, backends: [{ address: `127.0.0.1:${port}` }] });

/** A node that acks what it is sent while `acking()` says so (a stopped balancer acks nothing). */
function balancer(admin: AdminProcess, token: string, nodeId: string, acking: () => boolean = () => true, nackReason?: string): ControlClient {
  const c = connect(admin, token);
  c.stream.write({ message: 'hello', hello: { nodeId, appliedRevision: 0, version: 'test' } });
  const pending: number[] = [];
  const flush = (): void => {
    while (acking() && pending.length > 0) {
      const revision = pending.shift()!;
      c.stream.write(nackReason !== undefined ? { message: 'nack', nack: { revision, reason: nackReason } } : { message: 'ack', ack: { revision } });
    }
  };
  c.stream.on('data', (m: { message: string; snapshot?: { revision: number } }) => {
    if (m.message === 'snapshot' && m.snapshot) pending.push(m.snapshot.revision);
    flush();
  });
  const timer = setInterval(flush, 100);
  c.stream.on('close', () => clearInterval(timer));
  void c.status.then(() => clearInterval(timer));
  return c;
}

type NodeRow = { nodeId: string; connected: boolean; appliedRevision: number | null; admin: string | null; lastNack: string | null };
const nodesOn = async (admin: AdminProcess): Promise<NodeRow[]> => (await admin.api('GET', '/v1/nodes')).body.items;

describe('one fleet on PostgreSQL', () => {
  it('every admin lists every balancer, converged is the fleet\'s, a node id is one stream across admins, stats come from the whole fleet', async () => {
    const db = await createDatabase(pg.url);
    const a = await startAdmin({ db });
    const b = await startAdmin({ db });
    try {
      const token = (await a.api('POST', '/v1/tokens', { name: 'node', scopes: ['node'] })).body.token as string;
      expect((await a.api('PUT', '/v1/pools/p', pool('p', 1111))).status).toBe(201);
      let k2Acks = true;
      const k1 = balancer(a, token, 'k1');
      // The token was made through admin a a moment ago: admin b takes it at once.
      const k2 = balancer(b, token, 'k2', () => k2Acks);
      for (const admin of [a, b]) {
        await waitFor('both nodes on revision 1, on each admin', async () => {
          const nodes = await nodesOn(admin);
          return ['k1', 'k2'].every((id) => nodes.find((n) => n.nodeId === id && n.connected && n.appliedRevision === 1));
        });
      }
      const listed = await nodesOn(a);
      expect(listed.find((n) => n.nodeId === 'k1')!.admin).not.toBe(listed.find((n) => n.nodeId === 'k2')!.admin);

      said('k2 (on admin b) stops acking; a write through admin a is not converged on either admin');
      k2Acks = false;
      const write = await a.api('PUT', '/v1/pools/q', pool('q', 2222));
      expect(write.body.revision).toBe(2);
      await waitFor('k1 on revision 2', async () => (await nodesOn(a)).find((n) => n.nodeId === 'k1')?.appliedRevision === 2);
      for (let i = 0; i < 5; i++) {
        expect((await a.api('GET', '/v1/revisions/2')).body.converged).toBe(false);
        expect((await b.api('GET', '/v1/revisions/2')).body.converged).toBe(false);
        await new Promise((r) => setTimeout(r, 300));
      }
      said('k2 acks again: converged on both');
      k2Acks = true;
      for (const admin of [a, b]) await waitFor('revision 2 converged', async () => (await admin.api('GET', '/v1/revisions/2')).body.converged === true);

      said('an impostor says hello as k1 through admin b');
      const impostor = connect(b, token);
      impostor.stream.write({ message: 'hello', hello: { nodeId: 'k1', appliedRevision: 0, version: 'x' } });
      expect((await impostor.status).code).toBe(grpc.status.ALREADY_EXISTS);
      impostor.client.close();

      said('k2 reports stats to admin b; admin a shows them');
      k2.stream.write({ message: 'stats', stats: { atMs: Date.now(), appliedRevision: 2, pools: [{ name: 'q', panic: false, backends: [{ address: '127.0.0.1:2222', activeStreams: 4, callsByCode: { OK: 9 }, p50Ms: 1, p90Ms: 2, p99Ms: 3, healthy: true, ejected: false, draining: false }] }] } });
      await waitFor('k2\'s report on admin a', async () => (await a.api('GET', '/v1/stats')).body.nodes.some((n: { nodeId: string }) => n.nodeId === 'k2'), 15_000);

      said('the token is revoked through admin a: k2\'s stream on admin b ends too');
      expect((await a.api('DELETE', '/v1/tokens/node')).status).toBe(204);
      expect((await k2.status).code).toBe(grpc.status.UNAUTHENTICATED);
      expect((await k1.status).code).toBe(grpc.status.UNAUTHENTICATED);
      k1.client.close();
      k2.client.close();
      for (const admin of [a, b]) await waitFor('no node connected', async () => (await nodesOn(admin)).every((n) => !n.connected), 15_000);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 90_000);

  it('two admins revoking the last two admin tokens at once leave one', async () => {
    const db = await createDatabase(pg.url);
    const a = await startAdmin({ db });
    const b = await startAdmin({ db });
    try {
      const ops = (await a.api('POST', '/v1/tokens', { name: 'ops', scopes: ['admin'] })).body.token as string;
      const [first, second] = await Promise.all([a.api('DELETE', '/v1/tokens/bootstrap-admin', undefined, { token: ops }), b.api('DELETE', '/v1/tokens/ops', undefined, { token: ADMIN_TOKEN })]);
      said(`statuses: ${first.status}, ${second.status}`);
      expect([first.status, second.status].sort()).toEqual([204, 409]);
      const client = new Client({ connectionString: db });
      await client.connect();
      const left = (await client.query(`SELECT name FROM "ApiToken" WHERE scopes LIKE '%admin%'`)).rows;
      await client.end();
      expect(left).toHaveLength(1);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 60_000);

  it('a NUL in a NACK reason is stored with the rest of the batch', async () => {
    const db = await createDatabase(pg.url);
    const a = await startAdmin({ db });
    try {
      const token = (await a.api('POST', '/v1/tokens', { name: 'node', scopes: ['node'] })).body.token as string;
      await a.api('PUT', '/v1/pools/p', pool('p', 1111));
      const nodes = Array.from({ length: 5 }, (_, i) => balancer(a, token, `nul-${i}`, () => true, i === 0 ? 'bad\u0000byte' : 'refused'));
      const client = new Client({ connectionString: db });
      await client.connect();
      const rows = await waitFor('5 rows with their NACKs', async () => {
        const r = (await client.query(`SELECT "nodeId", "lastNack" FROM "Node" WHERE "lastNack" IS NOT NULL`)).rows as { nodeId: string; lastNack: string }[];
        return r.length === 5 && r;
      });
      await client.end();
      expect(rows.find((r) => r.nodeId === 'nul-0')!.lastNack).toBe('revision 1: bad\uFFFDbyte');
      for (const n of nodes) {
        n.stream.end();
        n.client.close();
      }
    } finally {
      await a.stop();
    }
  }, 60_000);

  it('writes during a database outage answer 503 with Retry-After; they work again once it is back', async () => {
    const db = await createDatabase(pg.url);
    const a = await startAdmin({ db });
    try {
      expect((await a.api('PUT', '/v1/pools/p', pool('p', 1111))).status).toBe(201);
      said('the PostgreSQL server stops');
      pg.outage();
      try {
        for (let i = 0; i < 5; i++) {
          const res = await a.api('PUT', `/v1/pools/o${i}`, pool(`o${i}`, 3000 + i));
          expect(res.status).toBe(503);
          expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
          expect(res.contentType).toContain('application/problem+json');
        }
      } finally {
        pg.restart();
      }
      said('back');
      const res = await waitFor('a write accepted again', async () => {
        const r = await a.api('PUT', '/v1/pools/o9', pool('o9', 3009));
        return r.status === 201 && r;
      }, 20_000);
      expect(res.body.revision).toBe(2);
    } finally {
      await a.stop();
    }
  }, 60_000);

  it('an admin refuses a database with a migration it does not know, naming it; a running one says not ready', async () => {
    const db = await createDatabase(pg.url);
    const a = await startAdmin({ db });
    const client = new Client({ connectionString: db });
    await client.connect();
    try {
      await client.query(`INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count, started_at) VALUES ('x', 'y', now(), '29991231000000_from_the_future', 1, now())`);
      const ready = await a.api('GET', '/readyz', undefined, { token: null });
      expect(ready.status).toBe(503);
      expect(ready.body.reason).toContain('29991231000000_from_the_future');
      await expect(startAdmin({ db })).rejects.toThrow(/29991231000000_from_the_future/);
    } finally {
      await client.end();
      await a.stop();
    }
  }, 60_000);
});
