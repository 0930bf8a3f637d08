/**
 * Routes (issue 24) through the admin's REST API and the CLI, on a balancer of the control plane
 * with --workers 2: exact weighted splits, header and method matches by GRPCRoute precedence,
 * UNIMPLEMENTED for what nothing matches, a weight shift under load with no failed call, a mirror
 * to a pool that is down costing nothing, export -> plan with no changes, and hostile routes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startEchoBackend, type EchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { ADMIN_TOKEN, killAdmins, startAdmin, type AdminProcess } from '../support/admin';
import { runCli } from '../support/cli';
import { unary, type EchoClient } from '../support/grpc';
import { freePort, killAll, startNode, waitFor, type BalancerProcess } from '../support/processes';

const pool = (name: string, address: string, extra: Record<string, unknown> = {}) => ({ name, ...extra, backends: [{ address }] });

describe('routes: weighted splits, matches, mirror (admin, control plane, --workers 2, CLI)', () => {
  let admin: AdminProcess;
  let node: BalancerProcess;
  let backends: Record<'v1' | 'v2' | 'canary' | 'export' | 'other', EchoBackend>;
  let clients: EchoClient[];
  let env: Record<string, string>;

  beforeAll(async () => {
    const started = await Promise.all((['v1', 'v2', 'canary', 'export', 'other'] as const).map((n) => startEchoBackend({ name: n })));
    backends = { v1: started[0]!, v2: started[1]!, canary: started[2]!, export: started[3]!, other: started[4]! };
    admin = await startAdmin();
    env = { SWITCHBOARD_URL: admin.url, SWITCHBOARD_TOKEN: ADMIN_TOKEN };
    const down = `127.0.0.1:${await freePort()}`; // nothing listens: the shadow pool is down
    const config = {
      healthPolicies: [],
      pools: [
        pool('greeter-v1', backends.v1.address),
        pool('greeter-v2', backends.v2.address),
        pool('greeter-canary', backends.canary.address),
        pool('greeter-export', backends.export.address),
        pool('shadow', down),
        pool('fallback', backends.other.address, { match: { services: ['switchboard.test.v1.Other'] } }),
      ],
      routes: [
        {
          name: 'echo',
          rules: [
            // Listed first, but the header rule below is more specific and wins for its calls.
            { matches: [{ method: { service: 'switchboard.test.v1.Echo' } }], backends: [{ pool: 'greeter-v1', weight: 90 }, { pool: 'greeter-v2', weight: 10 }], mirror: { pool: 'shadow', percent: 100 }, requestHeaders: { set: { 'x-route': 'echo' } } },
            { matches: [{ method: { service: 'switchboard.test.v1.Echo' }, headers: [{ name: 'x-canary', value: 'always' }] }], backends: [{ pool: 'greeter-canary' }] },
            { matches: [{ method: { service: 'switchboard.test.v1.Echo', method: 'ServerStream' } }], backends: [{ pool: 'greeter-export' }] },
          ],
        },
      ],
    };
    const put = await admin.api('PUT', '/v1/config', config);
    expect(put.status).toBe(200);
    const token = (await admin.api('POST', '/v1/tokens', { name: 'edge', scopes: ['node'] })).body.token as string;
    node = await startNode(admin.grpc, { nodeId: 'edge-routes', token, extraArgs: ['--workers', '2'] });
    await waitFor('the routes on the balancer', async () => (await node.state()).revision === put.body.revision, 15_000);
    clients = [echoClient(node.listen), echoClient(node.listen)];
  });

  afterAll(async () => {
    clients?.forEach((c) => c.close());
    await node?.stop();
    await admin?.stop();
    await Promise.all(Object.values(backends ?? {}).map((b) => b.stop()));
    killAdmins();
    killAll();
  });

  const call = (i: number, md?: Record<string, string>) => {
    const m = new grpc.Metadata();
    for (const [k, v] of Object.entries(md ?? {})) m.set(k, v);
    return unary(clients[i % 2]!, { payload: Buffer.from('r') }, m);
  };

  it('splits 90/10 within 1% over 2,000 calls; a mirror to a pool that is down costs the calls nothing; the route sets its header', async () => {
    const counts: Record<string, number> = {};
    const failed: string[] = [];
    for (let i = 0; i < 2000; i += 20) {
      const batch = await Promise.all(Array.from({ length: 20 }, (_, j) => call(i + j)));
      for (const r of batch) {
        if (r.error) failed.push(`${r.error.code} ${r.error.details}`);
        else counts[r.response!.backend] = (counts[r.response!.backend] ?? 0) + 1;
      }
    }
    expect(failed).toEqual([]);
    expect(counts.v1! + counts.v2!).toBe(2000);
    expect(Math.abs(counts.v2! / 2000 - 0.1)).toBeLessThanOrEqual(0.01);
    expect(backends.v1.stats.lastMetadata?.['x-route']).toBe('echo');
    const m = await node.metrics();
    expect(m).toMatch(/switchboard_route_calls_total\{route="echo",pool="greeter-v1"\} 18\d\d/);
  });

  it('a header match beats the plain rule listed before it; a method match beats the service; nothing matched is UNIMPLEMENTED', async () => {
    const canary = await call(0, { 'x-canary': 'always' });
    expect(canary.response?.backend).toBe('canary');
    const stream = await new Promise<string>((resolve) => {
      const c = clients[0]!.ServerStream({ responseCount: 1 });
      c.on('data', (r: { backend: string }) => resolve(r.backend));
      c.on('error', () => {});
    });
    expect(stream).toBe('export');
    // A pool's own match still serves what no route matches.
    const other = await new Promise<grpc.ServiceError | null>((resolve) =>
      clients[0]!.makeUnaryRequest('/switchboard.test.v1.Other/Unary', () => Buffer.alloc(0), (b: Buffer) => b, {}, new grpc.Metadata(), (err: grpc.ServiceError | null) => resolve(err)),
    );
    expect(other?.code ?? 0).not.toBe(grpc.status.UNIMPLEMENTED);
    const none = await new Promise<grpc.ServiceError | null>((resolve) =>
      clients[0]!.makeUnaryRequest('/nobody.Home/Call', () => Buffer.alloc(0), (b: Buffer) => b, {}, new grpc.Metadata(), (err: grpc.ServiceError | null) => resolve(err)),
    );
    expect(none?.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(none?.details).toMatch(/no pool routes service "nobody.Home", and no route matches the call/);
  });

  it('switchboard route weights shifts the split under steady load with 0 failed calls, with If-Match; get routes shows it', async () => {
    let stopping = false;
    const failed: string[] = [];
    let ok = 0;
    const loops = [0, 1].map(async (i) => {
      while (!stopping && ok < 50_000) {
        const r = await call(i);
        if (r.error) failed.push(`${r.error.code} ${r.error.details}`);
        else ok++;
      }
    });
    try {
      await waitFor('load running', () => ok > 100);
      const shift = await runCli(['route', 'weights', 'echo', 'greeter-v1=0', 'greeter-v2=100', '--rule', '0'], env);
      expect(shift.stderr).toBe('');
      expect(shift.code).toBe(0);
      expect(shift.stdout).toContain('update route echo');
      const v2 = backends.v2.stats.calls;
      await waitFor('every call on v2', async () => {
        const before = backends.v1.stats.calls;
        const from = ok;
        await waitFor('50 more calls', () => ok >= from + 50);
        return backends.v1.stats.calls === before;
      }, 15_000);
      expect(backends.v2.stats.calls).toBeGreaterThan(v2);
    } finally {
      stopping = true;
      await Promise.all(loops);
    }
    expect(failed).toEqual([]);
    const get = await runCli(['get', 'routes'], env);
    expect(get.stdout).toContain('greeter-v1=0 greeter-v2=100');
    // A stale ETag is refused, not overwritten.
    const route = await admin.api('GET', '/v1/routes/echo');
    const stale = await admin.api('PUT', '/v1/routes/echo', route.body, { headers: { 'if-match': '"stale"' } });
    expect(stale.status).toBe(412);
  });

  it('a mirror copies exactly its percent of unary calls to a live shadow pool, and drops their answers', async () => {
    const route = (await admin.api('GET', '/v1/routes/echo')).body;
    route.rules[0].mirror = { pool: 'greeter-canary', percent: 50 };
    const put = await admin.api('PUT', '/v1/routes/echo', route);
    expect(put.status).toBe(200);
    await waitFor('the mirror on the balancer', async () => (await node.state()).revision >= put.body.revision);
    const before = backends.canary.stats.calls;
    for (let i = 0; i < 100; i++) {
      const r = await call(i);
      expect(r.response?.backend).toBe('v2'); // the answer is the primary's, never the shadow's
    }
    // 50% of each worker's calls (50 each): 50 copies, fire-and-forget.
    await waitFor('50 copies at the shadow', () => backends.canary.stats.calls - before >= 50);
    expect(backends.canary.stats.calls - before).toBeLessThanOrEqual(51);
  });

  it('export -> plan shows no changes', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-routes-'));
    const exported = await runCli(['export'], env);
    expect(exported.code).toBe(0);
    const file = path.join(dir, 'config.yaml');
    writeFileSync(file, exported.stdout);
    expect(exported.stdout).toContain('routes:');
    const plan = await runCli(['plan', '-f', file], env);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain('No changes');
  });

  it('hostile routes: a 400 naming the field for each; a pool a route uses cannot be deleted (409), nor dropped in the same apply (400)', async () => {
    const base = { name: 'bad', rules: [{ backends: [{ pool: 'greeter-v1' }] }] };
    const cases: [unknown, string][] = [
      [{ ...base, rules: [{ backends: [{ pool: 'nope' }] }] }, 'rules[0].backends[0].pool'],
      [{ ...base, rules: [{ backends: [{ pool: 'greeter-v1', weight: 0 }] }] }, 'rules[0].backends'],
      [{ ...base, rules: Array.from({ length: 17 }, () => base.rules[0]) }, 'rules'],
      [{ ...base, rules: [{ ...base.rules[0], matches: Array.from({ length: 9 }, () => ({})) }] }, 'rules[0].matches'],
      [{ ...base, rules: [{ ...base.rules[0], matches: [{ headers: [{ name: 'X-Upper', value: 'v' }] }] }] }, 'rules[0].matches[0].headers[0].name'],
      [{ ...base, rules: [{ ...base.rules[0], matches: [{ headers: [{ name: 'x-evil', value: 'a\r\nb: c' }] }] }] }, 'rules[0].matches[0].headers[0].value'],
      [{ ...base, rules: [{ ...base.rules[0], requestHeaders: { set: { 'x-a': ' padded' } } }] }, 'rules[0].requestHeaders.set.x-a'],
      [{ ...base, rules: [{ ...base.rules[0], requestHeaders: { set: { 'grpc-timeout': '1S' } } }] }, 'rules[0].requestHeaders.set.grpc-timeout'],
      [{ ...base, hostnames: ['Example.COM:443'] }, 'hostnames[0]'],
      [{ ...base, rules: [{ ...base.rules[0], mirror: { pool: 'ghost', percent: 10 } }] }, 'rules[0].mirror.pool'],
    ];
    for (const [body, field] of cases) {
      const r = await admin.api('POST', '/v1/routes', body);
      expect({ field, status: r.status }).toEqual({ field, status: 400 });
      expect(r.contentType).toContain('application/problem+json');
      expect(r.body.errors.map((e: { path: string }) => e.path)).toContain(field);
    }
    // At every limit: 16 rules of 8 matches of 16 headers each is accepted.
    const big = {
      name: 'big',
      hostnames: Array.from({ length: 16 }, (_, i) => `h${i}.example.test`),
      rules: Array.from({ length: 16 }, (_, i) => ({
        matches: Array.from({ length: 8 }, (_, j) => ({ method: { service: `big.S${i}`, method: `M${j}` }, headers: Array.from({ length: 16 }, (_, k) => ({ name: `x-h${k}`, value: 'v'.repeat(64) })) })),
        backends: Array.from({ length: 16 }, (_, k) => ({ pool: k % 2 === 0 ? 'greeter-v1' : 'greeter-v2', weight: 1000 })),
      })),
    };
    const created = await admin.api('POST', '/v1/routes', big);
    expect(created.status).toBe(201);
    expect((await admin.api('DELETE', '/v1/routes/big')).status).toBe(200);
    const del = await admin.api('DELETE', '/v1/pools/greeter-v2');
    expect(del.status).toBe(409);
    expect(del.body.detail).toContain('route echo');
    const config = (await admin.api('GET', '/v1/config')).body;
    const dropped = await admin.api('PUT', '/v1/config', { ...config, pools: config.pools.filter((p: { name: string }) => p.name !== 'greeter-v2') });
    expect(dropped.status).toBe(400);
    expect(dropped.body.errors.map((e: { path: string }) => e.path)).toContain('routes[0].rules[0].backends[1].pool');
    // Nothing changed: the balancer still serves.
    expect((await call(0)).error).toBeUndefined();
  });
});
