/**
 * The admin REST API over real HTTP against the real `switchboard admin` process on a temporary
 * SQLite file: resources, natural-key upserts, ETags and If-Match, paging and filters, problem
 * details for every 4xx, and auth scopes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { killAdmins, startAdmin, type AdminProcess } from '../support/admin';

let admin: AdminProcess;
beforeAll(async () => {
  admin = await startAdmin();
});
afterAll(async () => {
  await admin?.stop();
  killAdmins();
});

const greeter = { match: { services: ['helloworld.Greeter'] }, backends: [{ address: '127.0.0.1:50051' }, { address: '127.0.0.1:50052', weight: 2 }] };

describe('open endpoints', () => {
  it('answers /healthz and /readyz without a token', async () => {
    expect((await admin.api('GET', '/healthz', undefined, { token: null })).body).toEqual({ status: 'ok' });
    const ready = await admin.api('GET', '/readyz', undefined, { token: null });
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ready' });
  });
});

describe('pools and backends', () => {
  it('PUT creates (201) then is an idempotent no-op: the same PUT twice makes one revision', async () => {
    const first = await admin.api('PUT', '/v1/pools/greeter', greeter);
    expect(first.status).toBe(201);
    expect(first.headers.get('location')).toBe('/v1/pools/greeter');
    expect(first.body).toMatchObject({ name: 'greeter', algorithm: 'least_conn', revision: expect.any(Number) });
    const second = await admin.api('PUT', '/v1/pools/greeter', greeter);
    expect(second.status).toBe(200);
    expect(second.body.revision).toBe(first.body.revision);
    expect(second.headers.get('etag')).toBe(first.headers.get('etag'));
    const revisions = await admin.api('GET', '/v1/revisions');
    expect(revisions.body.items.filter((r: { message: string }) => r.message.includes('pool greeter'))).toHaveLength(1);
  });

  it('GET returns the resource with its ETag; backends are a sub-resource with their own', async () => {
    const pool = await admin.api('GET', '/v1/pools/greeter');
    expect(pool.status).toBe(200);
    expect(pool.headers.get('etag')).toMatch(/^"[\w-]+"$/);
    expect(pool.body.backends.map((b: { address: string }) => b.address)).toEqual(['127.0.0.1:50051', '127.0.0.1:50052']);
    const backend = await admin.api('GET', '/v1/pools/greeter/backends/127.0.0.1:50052');
    expect(backend.body).toEqual({ address: '127.0.0.1:50052', weight: 2, drain: false });
    expect(backend.headers.get('etag')).toMatch(/^"/);
  });

  it('PATCH with a matching If-Match applies; a stale one is 412 and changes nothing', async () => {
    const before = await admin.api('GET', '/v1/pools/greeter/backends/127.0.0.1:50051');
    const etag = before.headers.get('etag')!;
    const ok = await admin.api('PATCH', '/v1/pools/greeter/backends/127.0.0.1:50051', { drain: true }, { headers: { 'if-match': etag } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ address: '127.0.0.1:50051', drain: true, revision: expect.any(Number) });
    expect(ok.headers.get('etag')).not.toBe(etag);
    const stale = await admin.api('PATCH', '/v1/pools/greeter/backends/127.0.0.1:50051', { weight: 9 }, { headers: { 'if-match': etag } });
    expect(stale.status).toBe(412);
    expect(stale.contentType).toContain('application/problem+json');
    expect(stale.body).toMatchObject({ status: 412, type: expect.stringContaining('precondition-failed'), currentEtag: ok.headers.get('etag') });
    expect((await admin.api('GET', '/v1/pools/greeter/backends/127.0.0.1:50051')).body.weight).toBe(1);
  });

  it('PUT of a pool without backends keeps them; with backends replaces them', async () => {
    const kept = await admin.api('PUT', '/v1/pools/greeter', { match: { services: ['helloworld.Greeter'] }, algorithm: 'p2c' });
    expect(kept.body.algorithm).toBe('p2c');
    expect(kept.body.backends).toHaveLength(2);
    const replaced = await admin.api('PUT', '/v1/pools/greeter', greeter);
    expect(replaced.body.backends).toEqual([
      { address: '127.0.0.1:50051', weight: 1, drain: false },
      { address: '127.0.0.1:50052', weight: 2, drain: false },
    ]);
  });

  it('POST creates a backend (201), a second POST of it is 409, DELETE removes it, then 404', async () => {
    const created = await admin.api('POST', '/v1/pools/greeter/backends', { address: '127.0.0.1:50053', labels: { zone: 'a' } });
    expect(created.status).toBe(201);
    expect((await admin.api('POST', '/v1/pools/greeter/backends', { address: '127.0.0.1:50053' })).status).toBe(409);
    const del = await admin.api('DELETE', '/v1/pools/greeter/backends/127.0.0.1:50053');
    expect(del.status).toBe(200);
    expect(del.body.revision).toBeGreaterThan(created.body.revision);
    const gone = await admin.api('GET', '/v1/pools/greeter/backends/127.0.0.1:50053');
    expect(gone.status).toBe(404);
    expect(gone.body.detail).toContain('127.0.0.1:50053');
  });

  it('If-Match on a missing resource is 412; If-Match * requires existence', async () => {
    expect((await admin.api('PUT', '/v1/pools/nope', greeter, { headers: { 'if-match': '"abc"' } })).status).toBe(412);
    expect((await admin.api('DELETE', '/v1/pools/nope', undefined, { headers: { 'if-match': '*' } })).status).toBe(404);
    expect((await admin.api('PATCH', '/v1/pools/greeter', { slowStartMs: 100 }, { headers: { 'if-match': '*' } })).status).toBe(200);
  });

  it('lists page with a cursor and filter by name prefix and label', async () => {
    for (const [i, team] of ['a', 'b', 'a', 'b', 'a'].entries()) {
      const res = await admin.api('PUT', `/v1/pools/team-${i}`, { match: { authority: `t${i}.internal` }, labels: { team } });
      expect(res.status).toBe(201);
    }
    const page1 = await admin.api('GET', '/v1/pools?prefix=team-&limit=2');
    expect(page1.body.items.map((p: { name: string }) => p.name)).toEqual(['team-0', 'team-1']);
    expect(page1.body.nextCursor).toEqual(expect.any(String));
    const page2 = await admin.api('GET', `/v1/pools?prefix=team-&limit=2&cursor=${page1.body.nextCursor}`);
    expect(page2.body.items.map((p: { name: string }) => p.name)).toEqual(['team-2', 'team-3']);
    const page3 = await admin.api('GET', `/v1/pools?prefix=team-&limit=2&cursor=${page2.body.nextCursor}`);
    expect(page3.body).toEqual({ items: [expect.objectContaining({ name: 'team-4' })], nextCursor: null });
    const teamA = await admin.api('GET', '/v1/pools?label=team=a');
    expect(teamA.body.items.map((p: { name: string }) => p.name)).toEqual(['team-0', 'team-2', 'team-4']);
    const bad = await admin.api('GET', '/v1/pools?limit=0');
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].path).toBe('limit');
  });
});

describe('health policies', () => {
  it('CRUD, and deleting one in use is 409 naming the pools', async () => {
    const created = await admin.api('POST', '/v1/health-policies', { name: 'grpc-default', active: { intervalMs: 1000 }, passive: {} });
    expect(created.status).toBe(201);
    expect(created.body.active).toEqual({ protocol: 'grpc', service: '', intervalMs: 1000, timeoutMs: 1000, healthyThreshold: 2, unhealthyThreshold: 3 });
    expect((await admin.api('PATCH', '/v1/pools/greeter', { healthPolicy: 'grpc-default' })).status).toBe(200);
    expect((await admin.api('PATCH', '/v1/pools/team-0', { healthPolicy: 'grpc-default' })).status).toBe(200);
    const inUse = await admin.api('DELETE', '/v1/health-policies/grpc-default');
    expect(inUse.status).toBe(409);
    expect(inUse.body.pools).toEqual(['greeter', 'team-0']);
    expect(inUse.body.detail).toContain('greeter, team-0');
    const unknown = await admin.api('PATCH', '/v1/pools/greeter', { healthPolicy: 'missing' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors).toEqual([{ path: 'healthPolicy', message: 'unknown health policy "missing"' }]);
    await admin.api('PATCH', '/v1/pools/greeter', { healthPolicy: null });
    await admin.api('PATCH', '/v1/pools/team-0', { healthPolicy: null });
    const patched = await admin.api('PATCH', '/v1/health-policies/grpc-default', { active: { intervalMs: 5000 } });
    expect(patched.body.active.intervalMs).toBe(5000);
    expect((await admin.api('DELETE', '/v1/health-policies/grpc-default')).status).toBe(200);
    expect((await admin.api('GET', '/v1/health-policies/grpc-default')).status).toBe(404);
  });
});

describe('bad input gets problem details naming the field, and loses nothing', () => {
  it('validation errors and unknown fields', async () => {
    const res = await admin.api('PUT', '/v1/pools/broken', { match: { services: ['helloworld.Greeter2'] }, algorithm: 'fastest', backends: [{ address: 'nope', weight: 0 }], colour: 'red' });
    expect(res.status).toBe(400);
    expect(res.contentType).toContain('application/problem+json');
    const paths = res.body.errors.map((e: { path: string }) => e.path).sort();
    expect(paths).toEqual(['algorithm', 'backends[0].address', 'backends[0].weight', 'colour']);
    expect(res.body.detail).toMatch(/^(algorithm|backends|colour)/);
    expect((await admin.api('GET', '/v1/pools/broken')).status).toBe(404);
  });

  it('a name in the body that differs from the URL', async () => {
    const res = await admin.api('PUT', '/v1/pools/one', { name: 'two', match: { authority: 'x' } });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].path).toBe('name');
  });

  it('a route that is already taken names the pool that has it', async () => {
    const res = await admin.api('PUT', '/v1/pools/copy', { match: { services: ['helloworld.Greeter'] } });
    expect(res.status).toBe(400);
    expect(res.body.errors[0]).toEqual({ path: 'match.services[0]', message: '"helloworld.Greeter" is already routed to pool "greeter"' });
  });

  it('malformed JSON is 400 naming the position', async () => {
    const res = await admin.api('PUT', '/v1/pools/x', undefined, { raw: '{"match": {"authority": "x"},}' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ position: 29, line: 1, column: 30 });
    expect(res.body.detail).toContain('position 29');
  });

  it('a body over 1 MiB is 413; a body neither JSON nor YAML is 415', async () => {
    const big = await admin.api('PUT', '/v1/pools/x', undefined, { raw: JSON.stringify({ match: { authority: 'x' }, labels: { a: 'x'.repeat(1024 * 1024) } }) });
    expect(big.status).toBe(413);
    expect(big.contentType).toContain('application/problem+json');
    const text = await admin.api('PUT', '/v1/pools/x', undefined, { raw: 'name: x', headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);
  });

  it('unknown routes and non-numeric revision numbers are problems too', async () => {
    const missing = await admin.api('GET', '/v1/nothing-here');
    expect(missing.status).toBe(404);
    expect(missing.contentType).toContain('application/problem+json');
    expect((await admin.api('GET', '/v1/revisions/abc')).status).toBe(400);
  });
});

describe('auth', () => {
  it('401 without or with a wrong token, 403 without the scope; tokens are shown once and stored hashed', async () => {
    const none = await admin.api('GET', '/v1/pools', undefined, { token: null });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain('Bearer');
    expect((await admin.api('GET', '/v1/pools', undefined, { token: 'sbt_wrong' })).status).toBe(401);

    const reader = await admin.api('POST', '/v1/tokens', { name: 'dashboard', scopes: ['read'] });
    expect(reader.status).toBe(201);
    expect(reader.body.token).toMatch(/^sbt_/);
    const writer = await admin.api('POST', '/v1/tokens', { name: 'ci', scopes: ['write'] });

    expect((await admin.api('GET', '/v1/pools', undefined, { token: reader.body.token })).status).toBe(200);
    const forbidden = await admin.api('PUT', '/v1/pools/z', { match: { authority: 'z' } }, { token: reader.body.token });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.detail).toContain('"write"');
    const written = await admin.api('PUT', '/v1/pools/z', { match: { authority: 'z' } }, { token: writer.body.token });
    expect(written.status).toBe(201);
    expect((await admin.api('GET', '/v1/tokens', undefined, { token: writer.body.token })).status).toBe(403);

    const rev = await admin.api('GET', `/v1/revisions/${written.body.revision}`);
    expect(rev.body.author).toBe('ci');

    const list = await admin.api('GET', '/v1/tokens');
    expect(list.body.items.map((t: { name: string }) => t.name)).toEqual(['bootstrap-admin', 'ci', 'dashboard']);
    expect(JSON.stringify(list.body)).not.toContain(reader.body.token);
    expect(list.body.items[0]).not.toHaveProperty('token');

    expect((await admin.api('DELETE', `/v1/tokens/${reader.body.id}`)).status).toBe(204);
    expect((await admin.api('GET', '/v1/pools', undefined, { token: reader.body.token })).status).toBe(401);
    const last = await admin.api('DELETE', '/v1/tokens/bootstrap-admin');
    expect(last.status).toBe(409);
  });
});

describe('metrics', () => {
  it('counts requests by route template and status', async () => {
    const res = await admin.api('GET', '/metrics', undefined, { token: null });
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/switchboard_admin_http_requests_total\{method="PUT",route="\/v1\/pools\/:name",status="201"\} \d+/);
    expect(res.body).toContain('switchboard_admin_http_request_duration_seconds_bucket');
  });
});
