/**
 * Hostile input to the admin's REST API, against a real admin process on a real SQLite file:
 * the defects of issue 10 one by one (alias bomb before auth, empty whole-config bodies, deep
 * merge patches, huge revision numbers, unusable backend addresses, duplicate keys, failed
 * authentication), then property-based fuzzing (fast-check) of every operation in the OpenAPI
 * document with JSON and YAML bodies, odd path parameters and every content type. The admin
 * must answer each with a 4xx problem (never a 5xx, never silence), stay up, and keep a stored
 * configuration that is unchanged or validly changed.
 */
import * as http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { configSchema } from '#config';
import { killAdmins, startAdmin, type AdminProcess, type ApiResponse } from '../support/admin';

let admin: AdminProcess;
const said = (what: string): void => {
  process.stdout.write(`hostile-rest: ${what}\n`);
};

const POOL = { name: 'keep', match: { services: ['keep.Me'] }, backends: [{ address: '127.0.0.1:50051' }] };

/** A billion-laughs YAML document: 9 levels of 9 aliases each, about 1 KB. */
const ALIAS_BOMB = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]', ...'bcdefghi'.split('').map((c, i) => {
  const prev = 'abcdefghi'[i]!;
  return `${c}: &${c} [*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev}]`;
})].join('\n');

function expectProblem(res: ApiResponse, status: number | number[]): void {
  expect(Array.isArray(status) ? status : [status]).toContain(res.status);
  expect(res.contentType).toContain('application/problem+json');
}

async function storedConfig(): Promise<unknown> {
  return (await admin.api('GET', '/v1/config')).body;
}

beforeAll(async () => {
  admin = await startAdmin();
  expect((await admin.api('PUT', '/v1/config', { pools: [POOL] })).status).toBe(200);
}, 30_000);

afterAll(async () => {
  await admin?.stop();
  killAdmins();
});

describe('defects of issue 10', () => {
  it('a YAML alias bomb is 401 without a token (not parsed) and 400 with one; the admin lives', async () => {
    said(`PUT /v1/config with a ${ALIAS_BOMB.length}-byte alias bomb, no token`);
    expectProblem(await admin.api('PUT', '/v1/config', undefined, { token: null, raw: ALIAS_BOMB, headers: { 'content-type': 'application/yaml' } }), 401);
    said('the same with the admin token');
    const res = await admin.api('PUT', '/v1/config', undefined, { raw: ALIAS_BOMB, headers: { 'content-type': 'application/yaml' } });
    expectProblem(res, 400);
    expect(res.body.detail).toMatch(/alias/i);
    expect((await admin.api('GET', '/healthz', undefined, { token: null })).status).toBe(200);
  });

  it.each([
    ['an empty body', ''],
    ['null', 'null'],
    ['{}', '{}'],
    ['only healthPolicies', '{"healthPolicies": []}'],
    ['an array', '[]'],
  ])('PUT /v1/config with %s is 400 and deletes nothing', async (_what, raw) => {
    const before = await storedConfig();
    said(`PUT /v1/config ${JSON.stringify(raw)}`);
    expectProblem(await admin.api('PUT', '/v1/config', undefined, { raw, headers: { 'content-type': 'application/json' } }), 400);
    expectProblem(await admin.api('POST', '/v1/config/plan', undefined, { raw, headers: { 'content-type': 'application/json' } }), 400);
    expect(await storedConfig()).toEqual(before);
  });

  it('an explicit empty config is how everything is deleted', async () => {
    const plan = await admin.api('POST', '/v1/config/plan', { healthPolicies: [], pools: [] });
    expect(plan.body.changes).toContainEqual(expect.objectContaining({ action: 'delete', kind: 'pool', name: 'keep' }));
  });

  it('a PATCH nested 20,000 levels deep, in JSON or YAML, is 400', async () => {
    const deep = `${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`;
    said('PATCH /v1/pools/keep with JSON nested 20,000 deep');
    const res = await admin.api('PATCH', '/v1/pools/keep', undefined, { raw: deep, headers: { 'content-type': 'application/merge-patch+json' } });
    expectProblem(res, 400);
    expect(res.body.detail).toMatch(/nests more than/);
    said('PATCH /v1/pools/keep with YAML nested 20,000 deep');
    expectProblem(await admin.api('PATCH', '/v1/pools/keep', undefined, { raw: `${'['.repeat(20_000)}${']'.repeat(20_000)}`, headers: { 'content-type': 'application/yaml' } }), 400);
    expect(await storedConfig()).toMatchObject({ pools: [{ name: 'keep' }] });
  });

  it.each(['99999999999999999999', '0', '-1', '1.5', '2147483648', 'abc'])('GET /v1/revisions/%s is 400 naming n', async (n) => {
    const res = await admin.api('GET', `/v1/revisions/${n}`);
    expectProblem(res, 400);
    expect(res.body.errors[0].path).toBe('n');
    expectProblem(await admin.api('POST', `/v1/revisions/${n}/rollback`), 400);
  });

  it.each(['[127.0.0.1]:80', '127.0.0.999:80', '127.1:80', '[::1', 'a..b:80', '-a:80', '127.0.0.1:0', '127.0.0.1:65536', '[fe80::1%eth0]:80'])(
    'the backend address %s is 400 naming the field',
    async (address) => {
      const res = await admin.api('POST', '/v1/pools/keep/backends', { address });
      expectProblem(res, 400);
      expect(res.body.errors.map((e: { path: string }) => e.path)).toContain('address');
    },
  );

  it('duplicate keys are 400 naming the field, in JSON and YAML', async () => {
    const res = await admin.api('PATCH', '/v1/pools/keep', undefined, { raw: '{"maxStreamsPerBackend": 1, "maxStreamsPerBackend": 100}', headers: { 'content-type': 'application/merge-patch+json' } });
    expectProblem(res, 400);
    expect(res.body.errors[0].path).toBe('maxStreamsPerBackend');
    expectProblem(await admin.api('PATCH', '/v1/pools/keep', undefined, { raw: 'a: 1\na: 2\n', headers: { 'content-type': 'application/yaml' } }), 400);
  });
});

/** Path parameters an attacker or a broken client would send; backend addresses stay on loopback or are invalid. */
const pathParam = fc.oneof(
  fc.constantFrom('keep', 'x', '', '..', '%2e%2e', '%00', 'a'.repeat(5000), '999999999999999999999', '-1', '0', '1', 'ünïcødé', '💥', '*', 'keep%2Fbackends'),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);
const addressParam = fc.oneof(
  fc.integer({ min: 0, max: 70_000 }).map((p) => `127.0.0.1:${p}`),
  fc.constantFrom('[127.0.0.1]:80', '127.0.0.1', ':80', '[::1]:99999', '127.0.0.1:abc', 'a b:1', '%5B::1%5D:1'),
);
/** Bodies: any JSON value, config-shaped fragments, deep, duplicate-keyed, YAML, and garbage. */
const body = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => ({ raw: JSON.stringify(v), type: 'application/json' })),
  fc
    .record({ name: fc.constantFrom('keep', 'fz', 'Bad Name'), match: fc.constantFrom({ services: ['*'] }, { services: ['fz.Svc'] }, {}, null), algorithm: fc.constantFrom('p2c', 'nope', 7), backends: fc.array(fc.record({ address: addressParam, weight: fc.integer({ min: -5, max: 2000 }) }), { maxLength: 3 }) }, { requiredKeys: [] })
    .map((v) => ({ raw: JSON.stringify(v), type: 'application/json' })),
  fc.integer({ min: 33, max: 3000 }).map((n) => ({ raw: `${'['.repeat(n)}${']'.repeat(n)}`, type: 'application/json' })),
  fc.constantFrom(
    { raw: '{"name":"a","name":"b"}', type: 'application/json' },
    { raw: '{"pools": [], "pools": [1]}', type: 'application/json' },
    { raw: ALIAS_BOMB, type: 'application/yaml' },
    { raw: 'pools:\n  - name: keep\n    name: again\n', type: 'application/yaml' },
    { raw: '!!binary AAAA', type: 'text/yaml' },
    { raw: '*undefined_alias', type: 'application/yaml' },
    { raw: '', type: 'application/json' },
    { raw: 'null', type: 'application/merge-patch+json' },
    { raw: '{"a":1', type: 'application/json' },
    { raw: '\u0000\uffff', type: 'application/json' },
    { raw: '<xml/>', type: 'application/xml' },
    { raw: 'a=b', type: 'application/x-www-form-urlencoded' },
    { raw: '{}', type: 'text/plain' },
    { raw: '{}', type: 'application/json; charset=utf-16' },
  ),
  fc.string({ maxLength: 200 }).map((raw) => ({ raw, type: 'application/yaml' })),
);

describe('property-based fuzzing of every OpenAPI operation', () => {
  it('answers every request with a 2xx/3xx/4xx (problem+json for errors), stays up, and keeps a valid config', async () => {
    const doc = (await admin.api('GET', '/openapi.json', undefined, { token: null })).body as { paths: Record<string, Record<string, unknown>> };
    const operations = Object.entries(doc.paths).flatMap(([template, ops]) => Object.keys(ops).map((method) => ({ method: method.toUpperCase(), template })));
    expect(operations.length).toBeGreaterThan(25);
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...operations), fc.array(pathParam, { minLength: 3, maxLength: 3 }), addressParam, fc.option(body, { nil: undefined }), fc.boolean(), async (op, params, address, b, withToken) => {
        let i = 0;
        const path = op.template.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(name === 'address' ? address : params[i++]!));
        const sendBody = b !== undefined && op.method !== 'GET' && op.method !== 'HEAD';
        const res = await admin.api(op.method, path, undefined, { ...(withToken ? {} : { token: null }), ...(sendBody ? { raw: b.raw, headers: { 'content-type': b.type } } : {}) });
        seen.set(String(res.status), (seen.get(String(res.status)) ?? 0) + 1);
        if (res.status >= 500) throw new Error(`${op.method} ${path.slice(0, 200)} (${b?.type}: ${b?.raw.slice(0, 200)}) answered ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`);
        if (res.status >= 400) expect(res.contentType).toContain('application/problem+json');
      }),
      { numRuns: 400, seed: 20261130, endOnFailure: true },
    );
    said(`400 fuzzed requests, statuses: ${JSON.stringify(Object.fromEntries(seen))}`);
    expect((await admin.api('GET', '/healthz', undefined, { token: null })).status).toBe(200);
    const stored = await storedConfig();
    expect(configSchema.safeParse(stored).success).toBe(true);
  }, 120_000);
});

describe('the dashboard\'s static files (/ui)', () => {
  /** A raw GET with the path as given (fetch would normalise "..", node:http sends it as is). */
  const rawGet = (path: string): Promise<{ status: number; type: string; body: string }> =>
    new Promise((resolve, reject) => {
      const u = new URL(admin.url);
      const req = http.request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (d: string) => (body += d.length + body.length > 1e6 ? '' : d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('serves only its own files: traversal, encoded, NUL and oversized names are 4xx problems, never a file from disk', async () => {
    const assets = new Set(['/ui', '/ui/', '/ui/app.js', '/ui/styles.css', '/ui/uPlot.min.css', '/ui/index.html']);
    const fixed = [
      '/ui/../package.json', '/ui/..%2fpackage.json', '/ui/%2e%2e%2f%2e%2e%2fpackage.json', '/ui/..\\..\\package.json', '/ui/%00', '/ui/app.js%00.html',
      '/ui/.env', '/ui/' + 'a'.repeat(5000), '/ui/%ff%fe', '/ui//etc/passwd', '/ui/index.html/', '/ui/app.js?x=../../x', '/ui/%2e%2e',
    ];
    const fuzzed = fc.sample(fc.string({ unit: 'binary', maxLength: 40 }), { numRuns: 150, seed: 20261130 }).map((x) => `/ui/${encodeURIComponent(x)}`);
    const statuses = new Map<number, number>();
    for (const path of [...fixed, ...fuzzed]) {
      const res = await rawGet(path);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      expect(res.status).toBeLessThan(500);
      expect(res.body).not.toContain('"name": "switchboard"'); // package.json
      expect(res.body).not.toContain('root:x:0:0'); // /etc/passwd
      if (res.status >= 400) expect(res.type).toMatch(/application\/problem\+json|text\/html/);
      else expect(assets.has(path.split('?')[0]!) || res.type.startsWith('text/html')).toBe(true);
    }
    said(`${fixed.length + fuzzed.length} odd /ui paths, statuses: ${JSON.stringify(Object.fromEntries(statuses))}`);
    const page = await rawGet('/ui');
    expect(page.status).toBe(200);
    // The source map (the dashboard's sources) is not public.
    expect((await rawGet('/ui/app.js.map')).status).toBe(404);
    expect((await admin.api('GET', '/healthz', undefined, { token: null })).status).toBe(200);
  });

  it('/v1/tokens/self needs a token and tells only the caller\'s own name and scopes', async () => {
    // 401, or 429 once the fuzzing above has spent this address's failed-authentication allowance.
    expect([401, 429]).toContain((await admin.api('GET', '/v1/tokens/self', undefined, { token: null })).status);
    expect([401, 429]).toContain((await admin.api('GET', '/v1/tokens/self', undefined, { token: 'sbt_made_up' })).status);
    const self = await admin.api('GET', '/v1/tokens/self');
    expect(self.status).toBe(200);
    expect(Object.keys(self.body).sort()).toEqual(['id', 'name', 'scopes']);
    expect(JSON.stringify(self.body)).not.toMatch(/sbt_/);
  });
});

describe('failed authentication', () => {
  // An admin of its own: the fuzzing above spent some of this address's failures.
  let fresh: AdminProcess;
  beforeAll(async () => {
    fresh = await startAdmin();
  }, 30_000);
  afterAll(async () => {
    await fresh?.stop();
  });
  it('failed authentication is logged and, past the limit, answered 429; a valid token still works', async () => {
    const statuses: number[] = [];
    said('100 requests with made-up tokens');
    for (let i = 0; i < 100; i++) statuses.push((await fresh.api('GET', '/v1/pools', undefined, { token: `sbt_guess_${i}` })).status);
    // 60 failures a minute per address, then 429.
    const first429 = statuses.indexOf(429);
    expect(first429).toBe(60);
    expect(statuses.slice(0, first429).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(first429).every((s) => s === 429)).toBe(true);
    const limited = await fresh.api('GET', '/v1/pools', undefined, { token: 'sbt_guess_again' });
    expectProblem(limited, 429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await fresh.api('GET', '/v1/pools')).status).toBe(200);
    expect(fresh.logs.some((l) => l.includes('"authentication failed"'))).toBe(true);
    // Logged in a few lines, not 100.
    expect(fresh.logs.filter((l) => l.includes('"authentication failed"')).length).toBeLessThan(10);
  });
});
