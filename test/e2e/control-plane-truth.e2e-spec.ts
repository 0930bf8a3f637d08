/**
 * The control plane tells the truth (issue 27): against a real admin, a node token holder
 * cannot take over another node's id, ack revisions it was never sent, keep a stream after its
 * token is revoked, break /metrics with one report, or grow the admin's figures with backends
 * that are not in the config. Each part reproduces a defect seen on the main of its day.
 */
import * as grpc from '@grpc/grpc-js';
import Database from 'libsql';
import { afterAll, describe, expect, it } from '@jest/globals';
import type { StatsReport } from '#proto';
import { ADMIN_TOKEN as ADMIN_TOKEN_FOR_CLI, killAdmins, startAdmin, type AdminProcess } from '../support/admin';
import { connect, type ControlClient } from '../support/control-client';
import { startEchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { runCli } from '../support/cli';
import { unary } from '../support/grpc';
import { killAll, startNode, waitFor } from '../support/processes';

const said = (what: string): void => {
  process.stdout.write(`control-plane-truth: ${what}\n`);
};

afterAll(() => {
  killAdmins();
  killAll();
});

const pool = (name: string, ports: number[]): unknown => ({ name, match: { services: [`${name}.Svc`] }, backends: ports.map((p) => ({ address: `127.0.0.1:${p}` })) });

async function nodeToken(admin: AdminProcess, name = 'node'): Promise<string> {
  return (await admin.api('POST', '/v1/tokens', { name, scopes: ['node'] })).body.token as string;
}

/** A node that says hello and acks every snapshot it gets (as a real balancer does). */
function balancer(admin: AdminProcess, token: string, nodeId: string, opts: { nack?: (revision: number) => string | undefined } = {}): ControlClient {
  const c = connect(admin, token);
  c.stream.write({ message: 'hello', hello: { nodeId, appliedRevision: 0, version: 'test' } });
  c.stream.on('data', (m: { message: string; snapshot?: { revision: number } }) => {
    if (m.message !== 'snapshot' || !m.snapshot) return;
    const reason = opts.nack?.(m.snapshot.revision);
    if (reason !== undefined) c.stream.write({ message: 'nack', nack: { revision: m.snapshot.revision, reason } });
    else c.stream.write({ message: 'ack', ack: { revision: m.snapshot.revision } });
  });
  return c;
}

async function node(admin: AdminProcess, nodeId: string): Promise<{ connected: boolean; appliedRevision: number | null; lastNack: string | null; admin: string | null } | undefined> {
  return (await admin.api('GET', '/v1/nodes')).body.items.find((n: { nodeId: string }) => n.nodeId === nodeId);
}

function report(pools: StatsReport['pools'], appliedRevision = 1): { message: 'stats'; stats: StatsReport } {
  return { message: 'stats', stats: { atMs: Date.now(), appliedRevision, pools } };
}

const backend = (address: string, over: Record<string, unknown> = {}): any => ({ address, activeStreams: 1, callsByCode: { OK: 10 }, p50Ms: 1, p90Ms: 2, p99Ms: 3, healthy: true, ejected: false, draining: false, ...over });

describe('the control plane tells the truth', () => {
  it('one live stream per node id: an impostor is refused, acks of revisions never sent are refused, a NACKed revision does not converge', async () => {
    const admin = await startAdmin();
    try {
      const token = await nodeToken(admin);
      expect((await admin.api('PUT', '/v1/pools/a', pool('a', [1111]))).status).toBe(201);
      said('the real edge-1 connects and acks');
      const real = balancer(admin, token, 'edge-1', { nack: (r) => (r >= 3 ? 'pool "tlsbad" tls: cannot read CA file /nonexistent/ca.pem' : undefined) });
      await waitFor('edge-1 on revision 1', async () => (await node(admin, 'edge-1'))?.appliedRevision === 1);

      said('an impostor says hello as edge-1');
      const impostor = connect(admin, token);
      impostor.stream.write({ message: 'hello', hello: { nodeId: 'edge-1', appliedRevision: 2147483647, version: 'x' } });
      const refused = await impostor.status;
      expect(refused.code).toBe(grpc.status.ALREADY_EXISTS);
      expect(refused.details).toMatch(/already connected/);
      impostor.client.close();
      const after = await node(admin, 'edge-1');
      expect(after).toMatchObject({ connected: true, appliedRevision: 1 });

      said('a revision is written; edge-1 acks it; then one it NACKs');
      expect((await admin.api('PUT', '/v1/pools/b', pool('b', [2222]))).body.revision).toBe(2);
      await waitFor('edge-1 on revision 2', async () => (await node(admin, 'edge-1'))?.appliedRevision === 2);
      expect((await admin.api('PUT', '/v1/pools/c', pool('c', [3333]))).body.revision).toBe(3);
      await waitFor('the NACK of revision 3', async () => (await node(admin, 'edge-1'))?.lastNack?.startsWith('revision 3:'));
      expect((await admin.api('GET', '/v1/revisions/3')).body.converged).toBe(false);
      expect((await admin.api('GET', '/v1/revisions/2')).body.converged).toBe(true);

      said('a second stream of the real token acks 99999999 as another id: refused, nothing stored');
      const liar = connect(admin, token);
      liar.stream.write({ message: 'hello', hello: { nodeId: 'liar', appliedRevision: 99999999, version: 'x' } });
      await waitFor('liar listed', async () => (await node(admin, 'liar'))?.connected);
      expect((await node(admin, 'liar'))!.appliedRevision).toBeNull(); // a revision that does not exist is not believed
      liar.stream.write({ message: 'ack', ack: { revision: 99999999 } });
      expect((await liar.status).code).toBe(grpc.status.INVALID_ARGUMENT);
      liar.client.close();
      expect((await node(admin, 'liar'))!.appliedRevision).not.toBe(99999999);
      expect((await admin.api('GET', '/v1/revisions/3')).body.converged).toBe(false);

      said('edge-1 leaves: a new stream may take its id');
      real.stream.end();
      real.client.close();
      await waitFor('edge-1 disconnected', async () => (await node(admin, 'edge-1'))?.connected === false);
      const back = balancer(admin, token, 'edge-1');
      await waitFor('edge-1 back on revision 3', async () => (await node(admin, 'edge-1'))?.appliedRevision === 3);
      back.stream.end();
      back.client.close();
    } finally {
      await admin.stop();
    }
  }, 60_000);

  it('revoking a token ends the streams it opened, at once', async () => {
    const admin = await startAdmin();
    try {
      const token = await nodeToken(admin, 'edge-token');
      await admin.api('PUT', '/v1/pools/a', pool('a', [1111]));
      const c = balancer(admin, token, 'edge-2');
      await waitFor('edge-2 connected', async () => (await node(admin, 'edge-2'))?.connected);
      said('DELETE /v1/tokens/edge-token');
      expect((await admin.api('DELETE', '/v1/tokens/edge-token')).status).toBe(204);
      const status = await c.status;
      expect(status.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(status.details).toMatch(/revoked/);
      expect((await node(admin, 'edge-2'))!.connected).toBe(false);
      said('a revision after the revocation reaches nobody on that token');
      const snapshotsBefore = c.snapshots.length;
      await admin.api('PUT', '/v1/pools/b', pool('b', [2222]));
      expect(c.snapshots.length).toBe(snapshotsBefore);
      c.client.close();
    } finally {
      await admin.stop();
    }
  }, 30_000);

  it('stats reports are checked and bounded: a duplicate backend with a "constructor" code, unknown backends, absurd values', async () => {
    const admin = await startAdmin();
    try {
      const token = await nodeToken(admin);
      await admin.api('PUT', '/v1/pools/a', pool('a', [1111, 1112]));
      const c = balancer(admin, token, 'reporter');
      await waitFor('reporter on revision 1', async () => (await node(admin, 'reporter'))?.appliedRevision === 1);

      said('one backend listed twice, with calls_by_code {"constructor": 1}');
      c.stream.write(report([{ name: 'a', panic: false, backends: [backend('127.0.0.1:1111'), backend('127.0.0.1:1111', { callsByCode: { constructor: 1 } })] }]));
      const metrics = await admin.api('GET', '/metrics', undefined, { token: null });
      expect(metrics.status).toBe(200);
      const stats = await waitFor('the report', async () => (await admin.api('GET', '/v1/stats')).body.pools.find((p: { name: string }) => p.name === 'a'));
      const b = stats.backends.find((x: { address: string }) => x.address === '127.0.0.1:1111');
      expect(b.calls).toEqual({ OK: 10 });
      expect(b.totalCalls).toBe(10);
      expect((await admin.api('GET', '/metrics', undefined, { token: null })).status).toBe(200);

      said('a status name that is not one: the report is refused, the previous one stays');
      c.stream.write(report([{ name: 'a', panic: false, backends: [backend('127.0.0.1:1111', { callsByCode: { constructor: 1 } })] }]));
      said('absurd values: 4294967295 active streams, p99 1e308 and -5');
      for (const over of [{ activeStreams: 4294967295 }, { p99Ms: 1e308 }, { p99Ms: -5 }, { p50Ms: Number.NaN }]) c.stream.write(report([{ name: 'a', panic: false, backends: [backend('127.0.0.1:1111', over)] }]));
      said('50,000 backends and 100 pools that are not in the config, beside a good one');
      const junk = Array.from({ length: 50_000 }, (_, i) => backend(`127.0.0.${1 + (i % 200)}:${2000 + i}`));
      c.stream.write(report([{ name: 'a', panic: false, backends: [backend('127.0.0.1:1112', { activeStreams: 7 }), ...junk] }, ...Array.from({ length: 100 }, (_, i) => ({ name: `ghost-${i}`, panic: true, backends: [backend('127.0.0.1:9')] }))]));
      const good = await waitFor('the bounded report', async () => {
        const s = (await admin.api('GET', '/v1/stats')).body;
        const pa = s.pools.find((p: { name: string }) => p.name === 'a');
        return pa?.backends.some((x: { address: string; activeStreams: number }) => x.address === '127.0.0.1:1112' && x.activeStreams === 7) ? s : undefined;
      });
      expect(good.pools.map((p: { name: string }) => p.name)).toEqual(['a']);
      expect(good.pools[0].backends.map((x: { address: string }) => x.address)).toEqual(['127.0.0.1:1112']);
      for (const x of good.pools[0].backends) {
        expect(x.activeStreams).toBeLessThan(1000);
        expect(x.latencyMs.p99).toBeGreaterThanOrEqual(0);
        expect(x.latencyMs.p99).toBeLessThan(1e6);
      }
      const text = (await admin.api('GET', '/metrics', undefined, { token: null })).body as unknown as string;
      expect(String(text).length).toBeLessThan(200_000);
      expect(String(text)).not.toMatch(/ghost-/);
      c.stream.end();
      c.client.close();
    } finally {
      await admin.stop();
    }
  }, 60_000);

  it('a pool one balancer cannot serve (a CA file missing on its host) does not freeze the fleet: the revision applies, that pool answers UNAVAILABLE naming the file, later revisions apply', async () => {
    const admin = await startAdmin();
    const good = await startEchoBackend({ name: 'good' });
    const node1 = await startNode(admin.grpc, { nodeId: 'edge-tls', token: (await nodeToken(admin)) });
    const client = echoClient(node1.listen);
    try {
      expect((await admin.api('PUT', '/v1/pools/echo', { name: 'echo', match: { services: ['*'] }, backends: [{ address: good.address }] })).status).toBe(201);
      await waitFor('revision 1 served', async () => (await node1.state()).revision === 1);
      said('a pool whose tls.caFile does not exist on the balancer\'s host');
      const bad = await admin.api('PUT', '/v1/pools/tlsbad', { name: 'tlsbad', match: { services: ['bad.Svc'] }, tls: { caFile: '/nonexistent/switchboard-ca.pem' }, backends: [{ address: '127.0.0.1:1' }] });
      expect(bad.status).toBe(201);
      await waitFor('revision 2 applied', async () => (await node1.state()).revision === 2);
      await waitFor('revision 2 converged', async () => (await admin.api('GET', '/v1/revisions/2')).body.converged === true);
      const state = await node1.state();
      const failing = (state.pools as { name: string; failure?: string | null }[]).find((p) => p.name === 'tlsbad');
      expect(failing?.failure).toMatch(/\/nonexistent\/switchboard-ca\.pem/);
      // The rest of the revision serves; the failing pool's calls say why.
      expect((await unary(client, {})).response?.backend).toBe('good');
      const badClient = new (grpc.makeGenericClientConstructor({}, 'x'))(node1.listen, grpc.credentials.createInsecure());
      const failed = await new Promise<grpc.ServiceError>((resolve) =>
        badClient.makeUnaryRequest('/bad.Svc/Call', (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), (err: grpc.ServiceError | null) => resolve(err!)),
      );
      expect(failed.code).toBe(grpc.status.UNAVAILABLE);
      expect(failed.details).toMatch(/tlsbad.*\/nonexistent\/switchboard-ca\.pem/);
      badClient.close();
      const stats = await waitFor('the failure in the stats', async () => (await admin.api('GET', '/v1/stats')).body.pools.find((p: { name: string; failure: unknown }) => p.name === 'tlsbad' && p.failure));
      expect(stats.failure).toMatchObject({ nodeId: 'edge-tls', reason: expect.stringContaining('/nonexistent/switchboard-ca.pem') });
      said('switchboard drain after it: applied and converged, exit 0');
      const drained = await runCli(['drain', 'echo', good.address, '--server', admin.url, '--token', ADMIN_TOKEN_FOR_CLI]);
      expect(drained.stderr).toBe('');
      expect(drained.code).toBe(0);
      expect(drained.stdout).toMatch(/Converged: 1 connected balancer runs revision 3/);
      expect((await node1.state()).revision).toBe(3);
    } finally {
      client.close();
      await node1.stop();
      await good.stop();
      await admin.stop();
    }
  }, 60_000);

  it('switchboard apply and drain report a NACK as soon as it arrives, with its reason, and exit non-zero', async () => {
    const admin = await startAdmin();
    try {
      const token = await nodeToken(admin);
      await admin.api('PUT', '/v1/pools/a', pool('a', [1111]));
      const picky = balancer(admin, token, 'picky', { nack: (r) => (r >= 2 ? 'pool "a": cannot do that on this host' : undefined) });
      await waitFor('picky on revision 1', async () => (await node(admin, 'picky'))?.appliedRevision === 1);
      const started = Date.now();
      const drained = await runCli(['drain', 'a', '127.0.0.1:1111', '--server', admin.url, '--token', ADMIN_TOKEN_FOR_CLI, '--wait-timeout', '30']);
      expect(drained.code).toBe(1);
      expect(drained.stderr).toMatch(/revision 2.*rejected/);
      expect(drained.stderr).toMatch(/picky: pool "a": cannot do that on this host/);
      expect(Date.now() - started).toBeLessThan(20_000); // not the 30 s wait
      picky.stream.end();
      picky.client.close();
    } finally {
      await admin.stop();
    }
  }, 60_000);

  it('one admin per SQLite file: a second is refused naming the first; an unknown migration stops the start, naming it', async () => {
    const admin = await startAdmin();
    try {
      await expect(startAdmin({ dataDir: admin.dataDir })).rejects.toThrow(/another admin \(process \d+\) runs on/);
      await admin.api('PUT', '/v1/pools/a', pool('a', [1111]));
    } finally {
      await admin.stop();
    }
    said('the lock goes with the admin: the same file starts again');
    const again = await startAdmin({ dataDir: admin.dataDir });
    expect((await again.api('GET', '/v1/pools/a')).status).toBe(200);
    await again.stop();
    said('a migration from a newer Switchboard in the ledger');
    const db = new Database(admin.dbFile);
    db.prepare("INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count, started_at) VALUES ('x', 'y', 1, '29991231000000_from_the_future', 1, 1)").run();
    db.close();
    await expect(startAdmin({ dataDir: admin.dataDir })).rejects.toThrow(/29991231000000_from_the_future/);
  }, 60_000);

  it('a backend the balancer cannot reach is not healthy in the admin\'s stats, and says why', async () => {
    const admin = await startAdmin();
    const node1 = await startNode(admin.grpc, { nodeId: 'edge-dead', token: await nodeToken(admin) });
    const client = echoClient(node1.listen);
    try {
      // No health policy: only the connection attempts tell.
      await admin.api('PUT', '/v1/pools/echo', { name: 'echo', match: { services: ['*'] }, backends: [{ address: '127.0.0.1:1' }] });
      await waitFor('revision 1 served', async () => (await node1.state()).revision === 1);
      expect((await unary(client, {})).error?.code).toBe(grpc.status.UNAVAILABLE);
      const b = await waitFor('the dead backend reported', async () => {
        const pool0 = (await admin.api('GET', '/v1/stats')).body.pools.find((p: { name: string }) => p.name === 'echo');
        return pool0?.backends.find((x: { reachable: boolean }) => x.reachable === false);
      });
      expect(b).toMatchObject({ address: '127.0.0.1:1', healthy: false, reachable: false });
      expect(b.lastError).toMatch(/ECONNREFUSED/);
      const cli = await runCli(['stats', '--server', admin.url, '--token', ADMIN_TOKEN_FOR_CLI]);
      expect(cli.stdout).toMatch(/127\.0\.0\.1:1\s.*unreachable/);
    } finally {
      client.close();
      await node1.stop();
      await admin.stop();
    }
  }, 60_000);
});
