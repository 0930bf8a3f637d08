/**
 * The control plane end to end: the real admin and real balancers as separate processes on
 * 127.0.0.1. First snapshot, push on change, ACK/NACK, node listing, convergence, admin and
 * balancer restarts (static stability), auth failures, stats aggregation, and 50 config changes
 * under steady traffic with no failed call.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import Database from 'libsql';
import { controlPlane } from '#proto';
import { startEchoBackend, type EchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { ADMIN_TOKEN, killAdmins, startAdmin, type AdminProcess } from '../support/admin';
import { unary } from '../support/grpc';
import { killAll, sleep, startNode, waitFor } from '../support/processes';
import { steadyTraffic } from '../support/traffic';

const backends: EchoBackend[] = [];
afterAll(async () => {
  killAll();
  killAdmins();
  await Promise.all(backends.map((b) => b.stop()));
});

async function echoBackends(...names: string[]): Promise<EchoBackend[]> {
  const started = await Promise.all(names.map((name) => startEchoBackend({ name })));
  backends.push(...started);
  return started;
}

const pool = (addresses: string[], extra: Record<string, unknown> = {}) => ({ name: 'echo', match: { services: ['*'] }, ...extra, backends: addresses.map((address) => ({ address })) });

async function nodeState(admin: AdminProcess, nodeId: string) {
  return ((await admin.api('GET', '/v1/nodes')).body.items as { nodeId: string; connected: boolean; appliedRevision: number | null; lastNack: string | null }[]).find((n) => n.nodeId === nodeId);
}

describe('config from the admin', () => {
  it('sends the snapshot on connect and every change after; nodes ACK, revisions converge; a bad revision is NACKed and the old one keeps serving', async () => {
    const [a, b] = await echoBackends('cp-a', 'cp-b');
    const admin = await startAdmin();
    await admin.api('PUT', '/v1/config', { pools: [pool([a!.address])] });
    const node = await startNode(admin.grpc, { nodeId: 'edge-1', token: ADMIN_TOKEN });
    const client = echoClient(node.listen);
    try {
      await waitFor('first snapshot', async () => (await node.state()).revision === 1);
      expect((await unary(client, {})).response?.backend).toBe('cp-a');
      await waitFor('ack recorded', async () => (await nodeState(admin, 'edge-1'))?.appliedRevision === 1);
      const listed = await nodeState(admin, 'edge-1');
      expect(listed).toMatchObject({ connected: true, appliedRevision: 1, lastNack: null, connectedSince: expect.any(String), lastSeen: expect.any(String) });

      // Push on change: a backend added through the resource API.
      const put = await admin.api('PUT', `/v1/pools/echo/backends/${b!.address}`, {});
      expect(put.body.revision).toBe(2);
      await waitFor('revision 2 applied', async () => (await node.state()).pools[0]!.backends.length === 2);
      await waitFor('revision 2 converged', async () => (await admin.api('GET', '/v1/revisions/2')).body.converged === true);

      // A revision no balancer can take, written into the store behind the API's back.
      await admin.stop();
      const db = new Database(admin.dbFile);
      const bad = { healthPolicies: [], pools: [{ ...pool([a!.address]), algorithm: 'fastest', maxStreamsPerBackend: 0, maxQueuedCalls: 1000, queueTimeoutMs: 1000, slowStartMs: 0, panicThreshold: 50 }] };
      db.prepare('UPDATE Pool SET spec = ? WHERE name = ?').run(JSON.stringify({ ...bad.pools[0], name: undefined, backends: undefined }), 'echo');
      db.prepare("INSERT INTO Revision (number, createdAt, author, config, diff) VALUES (3, strftime('%s','now') * 1000, 'test', ?, '{\"changes\":[]}')").run(JSON.stringify(bad));
      db.close();
      const again = await startAdmin({ dataDir: admin.dataDir, args: ['--grpc', admin.grpc] });
      await waitFor('NACK recorded', async () => (await nodeState(again, 'edge-1'))?.lastNack?.startsWith('revision 3') === true, 15_000);
      expect((await nodeState(again, 'edge-1'))!.lastNack).toContain('pools[0].algorithm');
      expect((await again.api('GET', '/v1/revisions/3')).body.converged).toBe(false);
      // The balancer keeps serving revision 2.
      expect((await node.state()).revision).toBe(2);
      expect((await unary(client, {})).error).toBeUndefined();
      expect(await node.metrics()).toMatch(/switchboard_config_reloads_total\{result="rejected"\} [1-9]/);

      // Fixing it through the API makes revision 4, which is applied.
      const fixed = await again.api('PATCH', '/v1/pools/echo', { algorithm: 'round_robin' });
      expect(fixed.body.revision).toBe(4);
      await waitFor('revision 4 applied', async () => (await node.state()).revision === 4);
      await waitFor('revision 4 converged', async () => (await again.api('GET', '/v1/revisions/4')).body.converged === true);
      await again.stop();
    } finally {
      client.close();
      await node.stop();
    }
  });
});

describe('auth', () => {
  it('refuses a wrong token (UNAUTHENTICATED, logged on both sides) and a token without the node scope', async () => {
    const admin = await startAdmin();
    const reader = await admin.api('POST', '/v1/tokens', { name: 'reader', scopes: ['read'] });
    const wrong = await startNode(admin.grpc, { nodeId: 'intruder', token: 'sbt_wrong' });
    const noScope = await startNode(admin.grpc, { nodeId: 'reader-node', token: reader.body.token });
    try {
      await waitFor('refusal logged', () => admin.logs.some((l) => l.includes('refused a balancer without a valid token')));
      await waitFor('scope refusal logged', () => admin.logs.some((l) => l.includes('lacks the node scope')));
      await waitFor('balancer logs the refusal', () => wrong.logs.some((l) => l.includes('refused this balancer') && l.includes('"code":16')));
      expect((await admin.api('GET', '/v1/nodes')).body.items).toEqual([]);
      const nodeToken = await admin.api('POST', '/v1/tokens', { name: 'edge', scopes: ['node'] });
      expect((await admin.api('GET', '/v1/pools', undefined, { token: nodeToken.body.token })).status).toBe(403);

      // A stats report from a stream that never said who it is: refused, and not counted.
      const { Client } = controlPlane();
      const raw = new Client(admin.grpc, grpc.credentials.createInsecure());
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${nodeToken.body.token}`);
      const stream = raw.Connect(md);
      const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
      stream.on('error', () => {});
      stream.write({ message: 'stats', stats: { atMs: Date.now(), appliedRevision: 0, pools: [{ name: 'p', panic: false, backends: [] }] } });
      const refused = await status;
      raw.close();
      expect(refused.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(refused.details).toContain('stats before hello');
      expect((await admin.api('GET', '/v1/stats')).body).toEqual({ nodes: [], pools: [] });
    } finally {
      await Promise.all([wrong.stop(), noScope.stop(), admin.stop()]);
    }
  });
});

describe('static stability', () => {
  it('keeps serving while the admin is down for 30 s under load, also across its own restart, and reconnects', async () => {
    const [a, b] = await echoBackends('ss-a', 'ss-b');
    const admin = await startAdmin();
    const nodeToken = (await admin.api('POST', '/v1/tokens', { name: 'edge', scopes: ['node'] })).body.token as string;
    await admin.api('PUT', '/v1/config', { pools: [pool([a!.address, b!.address])] });
    let node = await startNode(admin.grpc, { nodeId: 'edge-ss', token: nodeToken });
    await waitFor('applied', async () => (await node.state()).revision === 1);
    let client = echoClient(node.listen);
    const traffic = steadyTraffic([client], { streams: 2, streamMessageEveryMs: 50 });
    try {
      admin.proc.kill('SIGKILL');
      await admin.stop();
      await sleep(30_000);
      const during = await traffic.stop();
      expect(during.unaryFailed).toEqual([]);
      expect(during.streamsFailed).toEqual([]);
      expect(during.unaryOk).toBeGreaterThan(100);
      expect(node.logs.some((l) => l.includes('lost the admin'))).toBe(true);

      // The balancer restarts while the admin is still down: it serves its stored snapshot.
      client.close();
      await node.stop();
      node = await startNode(admin.grpc, { nodeId: 'edge-ss', token: nodeToken, stateDir: node.stateDir });
      client = echoClient(node.listen);
      expect((await node.state()).revision).toBe(1);
      for (let i = 0; i < 20; i++) expect((await unary(client, {})).error).toBeUndefined();

      // The admin comes back on the same port and data; the balancer reconnects by itself.
      const back = await startAdmin({ dataDir: admin.dataDir, args: ['--grpc', admin.grpc] });
      await waitFor('reconnected', async () => (await nodeState(back, 'edge-ss'))?.connected === true, 15_000);
      await back.api('PATCH', `/v1/pools/echo/backends/${b!.address}`, { drain: true });
      await waitFor('change after reconnect applied', async () => (await node.state()).revision === 2);
      await back.stop();
    } finally {
      client.close();
      await node.stop();
    }
  }, 90_000);
});

describe('the stored snapshot', () => {
  it('a burst of revisions is stored as its newest, and what waits is stored at stop (SIGTERM)', async () => {
    const [a] = await echoBackends('st-a');
    const admin = await startAdmin();
    try {
      await admin.api('PUT', '/v1/config', { pools: [pool([a!.address])] });
      const node = await startNode(admin.grpc, { nodeId: 'store-1', token: ADMIN_TOKEN });
      const storedRevision = () => (JSON.parse(readFileSync(path.join(node.stateDir, 'snapshot.json'), 'utf8')) as { revision: number }).revision;
      await waitFor('revision 1 stored', () => existsSync(path.join(node.stateDir, 'snapshot.json')) && storedRevision() === 1);
      for (let i = 0; i < 10; i++) expect((await admin.api('PUT', `/v1/pools/echo/backends/${a!.address}`, { weight: 2 + i })).status).toBe(200);
      await waitFor('revision 11 applied', async () => (await node.state()).revision === 11);
      await node.stop(); // SIGTERM right after: the newest may still wait for its turn to be stored
      expect(storedRevision()).toBe(11);
      // And it is what a restart serves while the admin is away.
      const stopped = admin.grpc;
      await admin.stop();
      const again = await startNode(stopped, { nodeId: 'store-1', token: ADMIN_TOKEN, stateDir: node.stateDir });
      try {
        expect((await again.state()).revision).toBe(11);
        expect((await again.state()).pools[0]!.backends[0]!.weight).toBe(11);
      } finally {
        await again.stop();
      }
    } finally {
      await admin.stop();
    }
  }, 60_000);
});

describe('stats', () => {
  it('sums the reports of two balancers per backend, matching the calls made, and shows them per node', async () => {
    const [a, b] = await echoBackends('st-a', 'st-b');
    const admin = await startAdmin();
    await admin.api('PUT', '/v1/config', { pools: [pool([a!.address, b!.address], { algorithm: 'round_robin' })] });
    const nodes = await Promise.all(['st-1', 'st-2'].map((nodeId) => startNode(admin.grpc, { nodeId, token: ADMIN_TOKEN, statsIntervalMs: 300 })));
    const clients = nodes.map((n) => echoClient(n.listen));
    try {
      await Promise.all(nodes.map((n) => waitFor('applied', async () => (await n.state()).revision === 1)));
      for (let i = 0; i < 30; i++) await unary(clients[0]!, {});
      for (let i = 0; i < 20; i++) await unary(clients[1]!, {});
      for (let i = 0; i < 4; i++) await unary(clients[1]!, { statusCode: 5, statusMessage: 'nope' });
      const stats = await waitFor(
        'reports with every call',
        async () => {
          const s = (await admin.api('GET', '/v1/pools/echo/stats?perNode=true')).body;
          const total = s.backends?.reduce((n: number, x: { totalCalls: number }) => n + x.totalCalls, 0);
          return s.nodes.length === 2 && total === 54 ? s : undefined;
        },
        10_000,
      );
      const byAddress = Object.fromEntries(stats.backends.map((x: { address: string }) => [x.address, x]));
      // Round robin on each node: 15 + 12 calls per backend.
      expect(byAddress[a!.address].totalCalls).toBe(27);
      expect(byAddress[b!.address].totalCalls).toBe(27);
      expect(byAddress[a!.address].calls.NOT_FOUND + byAddress[b!.address].calls.NOT_FOUND).toBe(4);
      expect(byAddress[a!.address].errors + byAddress[b!.address].errors).toBe(4);
      expect(byAddress[a!.address].nodes.map((n: { nodeId: string; totalCalls: number }) => [n.nodeId, n.totalCalls])).toEqual([
        ['st-1', 15],
        ['st-2', 12],
      ]);
      expect(byAddress[a!.address]).toMatchObject({ healthy: true, healthyOn: 2, activeStreams: 0 });
      expect(byAddress[a!.address].latencyMs.p99).toBeGreaterThan(0);
      const all = await admin.api('GET', '/v1/stats');
      expect(all.body.pools.map((p: { name: string }) => p.name)).toEqual(['echo']);
      const metrics = (await admin.api('GET', '/metrics', undefined, { token: null })).body as string;
      expect(metrics).toContain(`switchboard_admin_backend_calls{pool="echo",backend="${a!.address}",code="OK"}`);
      expect(metrics).toMatch(/switchboard_admin_nodes_connected 2/);
      expect((await admin.api('GET', '/v1/pools/nope/stats')).status).toBe(404);
    } finally {
      clients.forEach((c) => c.close());
      await Promise.all(nodes.map((n) => n.stop()));
      await admin.stop();
    }
  });
});

describe('hot reload from the admin', () => {
  it('50 changes through the REST API under steady unary and streaming traffic on 2 balancers: no call fails', async () => {
    const bs = await echoBackends('hr-1', 'hr-2', 'hr-3', 'hr-4');
    const addresses = bs.map((x) => x.address);
    const admin = await startAdmin();
    await admin.api('PUT', '/v1/config', { pools: [pool(addresses.slice(0, 3))] });
    const nodes = await Promise.all(['hr-n1', 'hr-n2'].map((nodeId) => startNode(admin.grpc, { nodeId, token: ADMIN_TOKEN })));
    const clients = nodes.map((n) => echoClient(n.listen));
    try {
      await Promise.all(nodes.map((n) => waitFor('applied', async () => (await n.state()).revision === 1)));
      const traffic = steadyTraffic(clients, { streams: 3, streamMessageEveryMs: 20 });
      const algorithms = ['round_robin', 'p2c', 'least_conn', 'weighted_round_robin', 'least_response_time'];
      let last = 1;
      for (let i = 0; i < 50; i++) {
        let res;
        if (i % 5 === 0) res = await admin.api('PATCH', '/v1/pools/echo', { algorithm: algorithms[(i / 5) % algorithms.length] });
        else if (i % 5 === 1) res = await admin.api('PUT', `/v1/pools/echo/backends/${addresses[3]}`, { weight: 1 + (i % 7) });
        else if (i % 5 === 2) res = await admin.api('DELETE', `/v1/pools/echo/backends/${addresses[i % 3]}`);
        else if (i % 5 === 3) res = await admin.api('PUT', `/v1/pools/echo/backends/${addresses[(i - 1) % 3]}`, { weight: 2 });
        else res = await admin.api('PATCH', `/v1/pools/echo/backends/${addresses[3]}`, { weight: 10 + i });
        expect(res.status).toBeLessThan(300);
        last = res.body.revision;
        await sleep(40);
      }
      expect(last).toBe(51);
      await Promise.all(nodes.map((n) => waitFor('last revision applied', async () => (await n.state()).revision === 51)));
      await sleep(300);
      const result = await traffic.stop();
      expect(result.unaryFailed).toEqual([]);
      expect(result.streamsFailed).toEqual([]);
      expect(result.streamsOk).toBe(6);
      expect(result.unaryOk).toBeGreaterThan(200);
      expect(result.streamMessages).toBeGreaterThan(100);
      await waitFor('converged', async () => (await admin.api('GET', '/v1/revisions/51')).body.converged === true);
    } finally {
      clients.forEach((c) => c.close());
      await Promise.all(nodes.map((n) => n.stop()));
      await admin.stop();
    }
  }, 60_000);
});

describe('deltas', () => {
  const pushed = async (admin: AdminProcess) => {
    const text = (await admin.api('GET', '/metrics', undefined, { token: null })).body as string;
    const value = (name: string, kind: string) => Number(new RegExp(`^${name}\\{kind="${kind}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    return {
      snapshots: value('switchboard_admin_config_pushes_total', 'snapshot'),
      deltas: value('switchboard_admin_config_pushes_total', 'delta'),
      deltaBytes: value('switchboard_admin_config_pushed_bytes_total', 'delta'),
    };
  };

  it('a one-backend change reaches the balancer as a delta of that backend, giving the admin\'s config exactly; same revision with other content is resynced whole', async () => {
    const [a] = await echoBackends('d-a');
    const admin = await startAdmin();
    // A second pool of 300 backends nobody calls (loopback ports that refuse): the config is big, the change is not.
    const bulk = { name: 'bulk', match: { services: ['bulk.Nobody'] }, backends: Array.from({ length: 300 }, (_, i) => ({ address: `127.0.0.1:${21_000 + i}` })) };
    expect((await admin.api('PUT', '/v1/config', { pools: [pool([a!.address]), bulk] })).status).toBe(200);
    const node = await startNode(admin.grpc, { nodeId: 'delta-1', token: ADMIN_TOKEN });
    const client = echoClient(node.listen);
    try {
      await waitFor('revision 1 applied', async () => (await nodeState(admin, 'delta-1'))?.appliedRevision === 1);
      const before = await pushed(admin);
      expect(before).toMatchObject({ snapshots: 1, deltas: 0 });

      const put = await admin.api('PUT', '/v1/pools/bulk/backends/127.0.0.1:21007', { weight: 5 });
      expect(put.body.revision).toBe(2);
      await waitFor('revision 2 applied', async () => (await nodeState(admin, 'delta-1'))?.appliedRevision === 2);
      const after = await pushed(admin);
      expect(after.snapshots).toBe(1);
      expect(after.deltas).toBe(1);
      expect(after.deltaBytes).toBeLessThan(200);
      // What the delta gave equals the admin's config: the balancer's stored snapshot and its state.
      // (Stored off the event loop, at most once a second: it may land a moment after the ack.)
      const storedFile = () => JSON.parse(readFileSync(path.join(node.stateDir, 'snapshot.json'), 'utf8')) as { revision: number; config: unknown };
      await waitFor('revision 2 stored', () => storedFile().revision === 2);
      expect(storedFile().config).toEqual((await admin.api('GET', '/v1/config')).body);
      expect((await node.state()).pools.find((p) => p.name === 'bulk')!.backends.find((b) => b.address === '127.0.0.1:21007')!.weight).toBe(5);
      expect((await unary(client, {})).response?.backend).toBe('d-a');

      // A new admin database whose revision 2 says something else: the number matches, the hash does not.
      await admin.stop();
      const other = await startAdmin({ args: ['--grpc', admin.grpc] });
      try {
        expect((await other.api('PUT', '/v1/config', { pools: [pool([a!.address])] })).status).toBe(200);
        expect((await other.api('PUT', '/v1/pools/echo', pool([a!.address], { algorithm: 'round_robin' }))).body.revision).toBe(2);
        await waitFor('the other revision 2 applied', async () => (await node.state()).pools.length === 1, 15_000);
        expect((await node.state()).revision).toBe(2);
        expect(node.logs.some((l) => l.includes('asking the admin for a snapshot') && l.includes('hash differs'))).toBe(true);
        const resynced = await pushed(other);
        expect(resynced).toMatchObject({ snapshots: 1, deltas: 1 }); // the empty delta (hash check), then the snapshot it asked for
        expect((await unary(client, {})).response?.backend).toBe('d-a');
      } finally {
        await other.stop();
      }
    } finally {
      client.close();
      await node.stop();
    }
  }, 60_000);

  it('a snapshot travels in parts of a bounded size (so no config meets gRPC\'s 4 MiB message limit), put together exactly', async () => {
    const [a] = await echoBackends('d-big');
    // Parts of 64 KiB here, so a modest config travels in many of them.
    const admin = await startAdmin({ env: { SWITCHBOARD_SNAPSHOT_PART_CHARS: String(64 * 1024) } });
    const labels = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'v'.repeat(60)]));
    const bulk = { name: 'bulk', match: { services: ['bulk.Nobody'] }, backends: Array.from({ length: 400 }, (_, i) => ({ address: `127.0.0.1:${22_000 + i}`, labels })) };
    expect((await admin.api('PUT', '/v1/config', { pools: [pool([a!.address]), bulk] })).status).toBe(200);
    const size = Buffer.byteLength(JSON.stringify((await admin.api('GET', '/v1/config')).body));
    const node = await startNode(admin.grpc, { nodeId: 'parts-1', token: ADMIN_TOKEN });
    const client = echoClient(node.listen);
    try {
      await waitFor('revision 1 applied', async () => (await nodeState(admin, 'parts-1'))?.appliedRevision === 1);
      expect((await pushed(admin)).snapshots).toBe(Math.ceil(size / (64 * 1024)));
      const storedFile = () => JSON.parse(readFileSync(path.join(node.stateDir, 'snapshot.json'), 'utf8')) as { revision: number; config: unknown };
      await waitFor('revision 1 stored', () => existsSync(path.join(node.stateDir, 'snapshot.json')) && storedFile().revision === 1);
      expect(storedFile().config).toEqual((await admin.api('GET', '/v1/config')).body);
      expect((await unary(client, {})).response?.backend).toBe('d-big');
    } finally {
      client.close();
      await node.stop();
      await admin.stop();
    }
  }, 60_000);
});
