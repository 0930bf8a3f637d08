/**
 * DNS service discovery (issue 22) against a real DNS server (dnsmasq on 127.0.0.1, started
 * here): backends on 127.0.0.11, .12, ... on one port, found through A records, then SRV.
 * Scale-up, scale-down under load, a DNS outage, NXDOMAIN held then believed, SRV ports, weights
 * and priorities, and a discovering pool through the admin, the control plane and --workers 2.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { startEchoBackend, type EchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { startAdmin, killAdmins, type AdminProcess } from '../support/admin';
import { killDnsServers, startDnsServer, type DnsServer } from '../support/dns-server';
import { unary, type EchoClient } from '../support/grpc';
import { freePort, killAll, startBalancer, startNode, waitFor, type BalancerProcess } from '../support/processes';

const NAME = 'grpc.svc.test';
const hosts = (...last: number[]): string[] => last.map((n) => `127.0.0.${n} ${NAME}`);

interface DiscoveryState {
  name: string;
  addresses: string[];
  lastSuccess: string | null;
  lastError: string | null;
}
type PoolDoc = { name: string; discovery?: DiscoveryState; backends: { address: string; source: string; weight: number; draining: boolean; activeStreams: number }[] };
const pool = async (lb: BalancerProcess): Promise<PoolDoc> => (await lb.state()).pools[0] as unknown as PoolDoc;

/** Unary calls back to back on each client until stopped (at most `max`), counting failures. */
function load(clients: EchoClient[], max = 100_000): { stop(): Promise<{ ok: number; failed: { code: number; details: string }[] }>; ok: () => number } {
  let stopping = false;
  let ok = 0;
  const failed: { code: number; details: string }[] = [];
  const loops = clients.map(async (c) => {
    while (!stopping && ok + failed.length < max) {
      const r = await unary(c, { payload: Buffer.from('d') }, new grpc.Metadata(), { deadline: new Date(Date.now() + 5000) });
      if (r.error) failed.push({ code: r.error.code, details: r.error.details });
      else ok++;
    }
  });
  return {
    ok: () => ok,
    async stop() {
      stopping = true;
      await Promise.all(loops);
      return { ok, failed };
    },
  };
}

describe('DNS discovery (A records, one balancer)', () => {
  let port: number;
  let backends: EchoBackend[];
  let dns: DnsServer;
  let lb: BalancerProcess;
  const REFRESH_MS = 2000;

  beforeAll(async () => {
    port = await freePort();
    backends = await Promise.all([11, 12, 13, 14, 15, 16].map((n) => startEchoBackend({ name: `b${n}`, host: `127.0.0.${n}`, port })));
    dns = await startDnsServer(hosts(11, 12, 13));
    lb = await startBalancer({
      pools: [{ name: 'echo', match: { services: ['*'] }, discovery: { dns: { name: NAME, type: 'A', port, refreshMs: REFRESH_MS, holdMs: 3000, resolvers: [dns.address] } } }],
    });
    await waitFor('three discovered backends', async () => (await pool(lb)).backends.length === 3);
  });

  afterAll(async () => {
    await lb?.stop();
    await Promise.all((backends ?? []).map((b) => b.stop()));
    killDnsServers();
    killAll();
  });

  const calls = (n: number): number => backends[n - 11]!.stats.calls;

  it('shows the name, its addresses and each backend\'s source in /state, and counts resolutions', async () => {
    const p = await pool(lb);
    expect(p.discovery).toMatchObject({ name: NAME, addresses: [`127.0.0.11:${port}`, `127.0.0.12:${port}`, `127.0.0.13:${port}`], lastError: null });
    expect(p.discovery!.lastSuccess).not.toBeNull();
    expect(p.backends.every((b) => b.source === 'dns')).toBe(true);
    const metrics = await lb.metrics();
    expect(metrics).toMatch(/switchboard_dns_resolutions_total\{pool="echo",result="success"\} [1-9]/);
    expect(metrics).toMatch(/switchboard_dns_addresses\{pool="echo"\} 3/);
  });

  it('three records, then six: calls reach all six within refreshMs plus 1 s; two removed under load: 0 failed calls, no new calls to them', async () => {
    const clients = [echoClient(lb.listen), echoClient(lb.listen), echoClient(lb.listen)];
    const traffic = load(clients);
    try {
      await waitFor('calls on the first three', () => [11, 12, 13].every((n) => calls(n) > 0));
      const before = [14, 15, 16].map(calls);
      const changed = Date.now();
      await dns.setHosts(hosts(11, 12, 13, 14, 15, 16));
      const firstCall = new Map<number, number>();
      await waitFor('calls on all six', () => {
        [14, 15, 16].forEach((n, i) => {
          if (!firstCall.has(n) && calls(n) > before[i]!) firstCall.set(n, Date.now() - changed);
        });
        return firstCall.size === 3;
      }, 15_000);
      const scaleUpMs = Math.max(...firstCall.values());
      process.stdout.write(`dns scale-up: record change to first call on each new backend: ${[...firstCall].map(([n, ms]) => `b${n} ${ms} ms`).join(', ')}\n`);
      expect(scaleUpMs).toBeLessThanOrEqual(REFRESH_MS + 1000);

      // Scale down: .15 and .16 leave while calls go on.
      const removedAt = Date.now();
      await dns.setHosts(hosts(11, 12, 13, 14));
      let last = { 15: calls(15), 16: calls(16) };
      let lastNewCallMs = 0;
      const watch = setInterval(() => {
        const now = { 15: calls(15), 16: calls(16) };
        if (now[15] > last[15] || now[16] > last[16]) lastNewCallMs = Date.now() - removedAt;
        last = now;
      }, 10);
      try {
        await waitFor('the removed two gone from /state', async () => (await pool(lb)).backends.length === 4, 15_000);
        const atRemoval = calls(15) + calls(16);
        const okAtRemoval = traffic.ok();
        await waitFor('300 more calls on the remaining four', () => traffic.ok() >= okAtRemoval + 300);
        // At most the calls already picked when the set changed (one per client) arrive after it.
        expect(calls(15) + calls(16) - atRemoval).toBeLessThanOrEqual(clients.length);
      } finally {
        clearInterval(watch);
      }
      process.stdout.write(`dns scale-down: record change to the last new call on a removed backend: ${lastNewCallMs} ms\n`);
    } finally {
      const result = await traffic.stop();
      clients.forEach((c) => c.close());
      expect(result.failed).toEqual([]);
      expect(result.ok).toBeGreaterThan(300);
    }
  });

  it('the DNS server stopped: calls go on unharmed on the last good set, and the failure is counted and shown', async () => {
    const client = echoClient(lb.listen);
    const traffic = load([client]);
    try {
      await dns.kill();
      const p = await waitFor('a failed resolution in /state', async () => {
        const doc = await pool(lb);
        return doc.discovery?.lastError !== null && doc;
      }, 15_000);
      expect(p.backends).toHaveLength(4);
      expect(p.discovery!.addresses).toHaveLength(4);
      expect(await lb.metrics()).toMatch(/switchboard_dns_resolutions_total\{pool="echo",result="(timeout|error|refused)"\} [1-9]/);
      const ok = traffic.ok();
      await waitFor('calls still served', () => traffic.ok() >= ok + 100);
    } finally {
      const result = await traffic.stop();
      client.close();
      expect(result.failed).toEqual([]);
    }
  });

  it('NXDOMAIN is held (holdMs), then empties the pool; calls then fail UNAVAILABLE naming the DNS name', async () => {
    await dns.setHosts([]).catch(() => {});
    await dns.restart(); // answers again, but has no such name: NXDOMAIN
    const held = await waitFor('NXDOMAIN seen', async () => {
      const doc = await pool(lb);
      return /NXDOMAIN/.test(doc.discovery?.lastError ?? '') && doc;
    }, 15_000);
    // Seen, not yet believed: the set is kept for holdMs (3 s) after the first empty answer.
    expect(held.backends).toHaveLength(4);
    expect(held.discovery!.addresses).toHaveLength(4);
    await waitFor('pool emptied after the hold', async () => (await pool(lb)).backends.length === 0, 15_000);
    const client = echoClient(lb.listen);
    try {
      const r = await unary(client, { payload: Buffer.from('x') });
      expect(r.error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(r.error?.details).toContain(NAME);
      expect(r.error?.details).toMatch(/NXDOMAIN/);
    } finally {
      client.close();
    }
    // The name comes back: the pool serves again.
    await dns.setHosts(hosts(12));
    await waitFor('served again', async () => (await pool(lb)).backends.length === 1, 15_000);
  });
});

describe('DNS discovery (SRV: ports, weights, priorities)', () => {
  let backends: EchoBackend[];
  let dns: DnsServer;
  let lb: BalancerProcess;

  beforeAll(async () => {
    backends = await Promise.all([21, 22, 23].map((n) => startEchoBackend({ name: `s${n}`, host: `127.0.0.${n}` })));
    const srv = '_grpc._tcp.svc.test';
    dns = await startDnsServer(
      [21, 22, 23].map((n) => `127.0.0.${n} s${n}.svc.test`),
      [
        { name: srv, target: 's21.svc.test', port: backends[0]!.port, priority: 0, weight: 30 },
        { name: srv, target: 's22.svc.test', port: backends[1]!.port, priority: 0, weight: 10 },
        { name: srv, target: 's23.svc.test', port: backends[2]!.port, priority: 1, weight: 10 },
      ],
    );
    lb = await startBalancer({
      healthPolicies: [{ name: 'fast', active: { intervalMs: 200, timeoutMs: 500, healthyThreshold: 1, unhealthyThreshold: 1 } }],
      pools: [{ name: 'echo', match: { services: ['*'] }, algorithm: 'weighted_round_robin', healthPolicy: 'fast', discovery: { dns: { name: srv, type: 'SRV', refreshMs: 1000, resolvers: [dns.address] } } }],
    });
    await waitFor('three SRV backends', async () => (await pool(lb)).backends.length === 3);
  });

  afterAll(async () => {
    await lb?.stop();
    await Promise.all((backends ?? []).map((b) => b.stop()));
    killDnsServers();
    killAll();
  });

  it('takes each backend\'s port and weight from its record, and serves the lowest priority only', async () => {
    const p = await pool(lb);
    expect(p.backends.map((b) => [b.address, b.weight]).sort()).toEqual(backends.map((b, i) => [b.address, [30, 10, 10][i]]).sort());
    await waitFor('health checked', async () => (await lb.state()).pools[0]!.backends.every((b) => b.healthy));
    const client = echoClient(lb.listen);
    try {
      const seen = new Map<string, number>();
      for (let i = 0; i < 400; i++) {
        const r = await unary(client, { payload: Buffer.from('x') });
        const name = r.response?.backend ?? `error ${r.error?.code}`;
        seen.set(name, (seen.get(name) ?? 0) + 1);
      }
      expect(Object.fromEntries(seen)).toEqual({ s21: 300, s22: 100 });
      // Priority 0 unhealthy: priority 1 takes the calls.
      backends[0]!.setHealth('NOT_SERVING');
      backends[1]!.setHealth('NOT_SERVING');
      await waitFor('priority 0 unhealthy', async () => (await lb.state()).pools[0]!.backends.filter((b) => !b.healthy).length === 2);
      const r = await unary(client, { payload: Buffer.from('x') });
      expect(r.response?.backend).toBe('s23');
    } finally {
      backends[0]!.setHealth('SERVING');
      backends[1]!.setHealth('SERVING');
      client.close();
    }
  });
});

describe('DNS discovery through the admin, the control plane and --workers 2', () => {
  let port: number;
  let backends: EchoBackend[];
  let dns: DnsServer;
  let admin: AdminProcess;
  let node: BalancerProcess;

  beforeAll(async () => {
    port = await freePort();
    backends = await Promise.all([31, 32, 33].map((n) => startEchoBackend({ name: `w${n}`, host: `127.0.0.${n}`, port })));
    dns = await startDnsServer([31, 32].map((n) => `127.0.0.${n} ${NAME}`));
    admin = await startAdmin();
  });

  afterAll(async () => {
    await node?.stop();
    await admin?.stop();
    await Promise.all((backends ?? []).map((b) => b.stop()));
    killDnsServers();
    killAdmins();
    killAll();
  });

  it('refuses a discovery with a bad name or no port, naming the field', async () => {
    const base = { name: 'echo', match: { services: ['*'] } };
    const noPort = await admin.api('PUT', '/v1/pools/echo', { ...base, discovery: { dns: { name: NAME, type: 'A' } } });
    expect(noPort.status).toBe(400);
    expect(noPort.contentType).toContain('application/problem+json');
    expect(noPort.body.errors).toContainEqual(expect.objectContaining({ path: 'discovery.dns.port' }));
    const badName = await admin.api('PUT', '/v1/pools/echo', { ...base, discovery: { dns: { name: 'bad name..svc', type: 'A', port } } });
    expect(badName.status).toBe(400);
    expect(badName.body.errors).toContainEqual(expect.objectContaining({ path: 'discovery.dns.name' }));
    const badResolver = await admin.api('PUT', '/v1/pools/echo', { ...base, discovery: { dns: { name: NAME, type: 'A', port, resolvers: ['dns.example:53'] } } });
    expect(badResolver.status).toBe(400);
    expect(badResolver.body.errors).toContainEqual(expect.objectContaining({ path: 'discovery.dns.resolvers[0]' }));
  });

  it('resolves on the balancer, reports discovered backends to the admin, and drains one through the API', async () => {
    const put = await admin.api('PUT', '/v1/pools/echo', { name: 'echo', match: { services: ['*'] }, discovery: { dns: { name: NAME, type: 'A', port, refreshMs: 1000, resolvers: [dns.address] } } });
    expect(put.status).toBe(201);
    const token = (await admin.api('POST', '/v1/tokens', { name: 'edge', scopes: ['node'] })).body.token as string;
    node = await startNode(admin.grpc, { nodeId: 'edge-dns', token, extraArgs: ['--workers', '2'] });
    await waitFor('two discovered backends on the balancer', async () => (await pool(node)).backends.length === 2, 15_000);
    const client = echoClient(node.listen);
    try {
      const seen = new Set<string>();
      await waitFor('calls on both', async () => {
        const r = await unary(client, { payload: Buffer.from('x') });
        if (r.response) seen.add(r.response.backend);
        return seen.size === 2;
      });
      // The admin's stats list them, marked as found by DNS.
      const stats = await waitFor('discovered backends in the admin\'s stats', async () => {
        const s = await admin.api('GET', '/v1/pools/echo/stats');
        return s.status === 200 && s.body.backends.length === 2 && s.body;
      }, 15_000);
      expect(stats.backends.map((b: { source: string }) => b.source)).toEqual(['dns', 'dns']);
      // The export carries the field.
      const exported = await admin.api('GET', '/v1/config');
      expect(exported.body.pools[0].discovery.dns).toMatchObject({ name: NAME, type: 'A', port });
      // Drain a discovered backend: it is kept in the pool's drainAddresses.
      const drained = await admin.api('PATCH', `/v1/pools/echo/backends/127.0.0.31:${port}`, { drain: true });
      expect(drained.status).toBe(200);
      expect(drained.body).toMatchObject({ address: `127.0.0.31:${port}`, drain: true });
      expect((await admin.api('GET', '/v1/pools/echo')).body.drainAddresses).toEqual([`127.0.0.31:${port}`]);
      const bad = await admin.api('PATCH', `/v1/pools/echo/backends/127.0.0.31:${port}`, { weight: 5 });
      expect(bad.status).toBe(400);
      expect(bad.body.errors[0].path).toBe('weight');
      // Hostile path parameters and bodies: a 400 naming the field, nothing committed.
      const revision = (await admin.api('GET', '/v1/revisions')).body.items?.[0]?.number;
      for (const [address, body, field] of [
        ['not%20an%20address', { drain: true }, 'address'],
        [`127.0.0.31:${port}`, { drain: 'yes' }, 'drain'],
        [`127.0.0.31:${port}`, { drain: true, address: '127.0.0.99:1' }, 'address'],
      ] as const) {
        const r = await admin.api('PATCH', `/v1/pools/echo/backends/${address}`, body);
        expect(r.status).toBe(400);
        expect(r.contentType).toContain('application/problem+json');
        expect(r.body.errors[0].path).toBe(field);
      }
      expect((await admin.api('GET', '/v1/revisions')).body.items?.[0]?.number).toBe(revision);
      await waitFor('drained on the balancer', async () => (await pool(node)).backends.find((b) => b.address === `127.0.0.31:${port}`)?.draining === true, 15_000);
      const before = backends[0]!.stats.calls;
      for (let i = 0; i < 50; i++) expect((await unary(client, { payload: Buffer.from('x') })).response?.backend).toBe('w32');
      expect(backends[0]!.stats.calls).toBe(before);
      // A third record joins on every worker.
      await dns.setHosts([31, 32, 33].map((n) => `127.0.0.${n} ${NAME}`));
      await waitFor('the third one serves', async () => (await unary(client, { payload: Buffer.from('x') })).response?.backend === 'w33', 15_000);
      // One resolution per balancer: only the primary resolves (its workers get the result).
      const state = (await node.state()) as unknown as { workers?: { count: number } };
      expect(state.workers?.count).toBe(2);
      const resolutions = async (): Promise<number> => Number(/switchboard_dns_resolutions_total\{pool="echo",result="success"\} (\d+)/.exec(await node.metrics())?.[1] ?? 0);
      const first = await waitFor('a resolution', async () => {
        const n = await resolutions();
        return n > 0 && n;
      });
      await waitFor('the next resolution', async () => (await resolutions()) > first);
      const from = Date.now();
      const start = await resolutions();
      await waitFor('three more resolutions', async () => (await resolutions()) >= start + 3, 15_000);
      // Every ~0.9-1 s (TTL 1 s, refreshMs 1000, jittered): three take at least 1.8 s from one
      // balancer; three resolving processes would do it in about one second.
      expect(Date.now() - from).toBeGreaterThanOrEqual(1800);
    } finally {
      client.close();
    }
  });
});
