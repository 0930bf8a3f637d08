/**
 * The declarative side of the admin, over HTTP against the real process: export / plan / apply
 * round trips, all-or-nothing apply, revisions with rollback, and concurrent writers.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import Database from 'libsql';
import { parse } from 'yaml';
import { killAdmins, startAdmin, type AdminProcess } from '../support/admin';

let admin: AdminProcess;
beforeAll(async () => {
  admin = await startAdmin();
});
afterAll(async () => {
  await admin?.stop();
  killAdmins();
});

const desired = {
  healthPolicies: [{ name: 'grpc-default', active: { protocol: 'grpc', intervalMs: 2000 }, passive: { consecutiveFailures: 5 } }],
  pools: [
    {
      name: 'greeter',
      match: { services: ['helloworld.Greeter'] },
      healthPolicy: 'grpc-default',
      backends: [{ address: '127.0.0.1:50051' }, { address: '127.0.0.1:50052', weight: 2 }],
    },
    { name: 'default', match: { services: ['*'] }, algorithm: 'round_robin', backends: [{ address: '127.0.0.1:50060' }] },
  ],
};

describe('plan / apply / export', () => {
  it('plan shows the creates and changes nothing', async () => {
    const plan = await admin.api('POST', '/v1/config/plan', desired);
    expect(plan.status).toBe(200);
    const summary = plan.body.changes.map((c: { action: string; kind: string; name: string }) => `${c.action} ${c.kind} ${c.name}`);
    expect(summary).toEqual([
      'create healthPolicy grpc-default',
      'create pool default',
      'create backend 127.0.0.1:50060',
      'create pool greeter',
      'create backend 127.0.0.1:50051',
      'create backend 127.0.0.1:50052',
    ]);
    expect((await admin.api('GET', '/v1/config')).body).toEqual({ healthPolicies: [], pools: [] });
    expect((await admin.api('GET', '/v1/revisions')).body.items).toEqual([]);
  });

  it('apply makes one revision; applying it again, or applying the export, is a no-op', async () => {
    const applied = await admin.api('PUT', '/v1/config', desired);
    expect(applied.status).toBe(200);
    expect(applied.body).toMatchObject({ revision: 1, changed: true });
    expect(applied.body.changes).toHaveLength(6);
    const again = await admin.api('PUT', '/v1/config', desired);
    expect(again.body).toEqual({ revision: 1, changed: false, changes: [] });
    const exported = await admin.api('GET', '/v1/config');
    expect(exported.headers.get('x-switchboard-revision')).toBe('1');
    expect((await admin.api('POST', '/v1/config/plan', exported.body)).body).toEqual({ changes: [] });
    expect((await admin.api('PUT', '/v1/config', exported.body)).body).toEqual({ revision: 1, changed: false, changes: [] });
    const yaml = await admin.api('GET', '/v1/config', undefined, { headers: { accept: 'application/yaml' } });
    expect(yaml.contentType).toContain('application/yaml');
    expect(parse(yaml.body as string)).toEqual(exported.body);
    // YAML in, as the declarative files are written.
    const fromYaml = await admin.api('PUT', '/v1/config', undefined, { raw: yaml.body as string, headers: { 'content-type': 'application/yaml' } });
    expect(fromYaml.body).toEqual({ revision: 1, changed: false, changes: [] });
    const badYaml = await admin.api('POST', '/v1/config/plan', undefined, { raw: 'pools:\n  - name: a\n   match: x\n', headers: { 'content-type': 'application/yaml' } });
    expect(badYaml.status).toBe(400);
    expect(badYaml.body).toMatchObject({ type: expect.stringContaining('malformed-yaml'), line: 3 });
  });

  it('plan shows field-level before -> after, and deletes', async () => {
    const next = structuredClone(desired) as any;
    next.pools[0]!.backends[1]!.weight = 5;
    next.pools[0]!.algorithm = 'p2c';
    next.pools.pop();
    const plan = await admin.api('POST', '/v1/config/plan', next);
    expect(plan.body.changes).toEqual([
      { action: 'delete', kind: 'pool', name: 'default', fields: expect.any(Array) },
      { action: 'delete', kind: 'backend', name: '127.0.0.1:50060', pool: 'default', fields: expect.any(Array) },
      { action: 'update', kind: 'pool', name: 'greeter', fields: [{ path: 'algorithm', before: 'least_conn', after: 'p2c' }] },
      { action: 'update', kind: 'backend', name: '127.0.0.1:50052', pool: 'greeter', fields: [{ path: 'weight', before: 2, after: 5 }] },
    ]);
    const applied = await admin.api('PUT', '/v1/config', next);
    expect(applied.body).toMatchObject({ revision: 2, changed: true });
    expect(applied.body.changes).toEqual(plan.body.changes);
  });

  it('an invalid config is rejected whole, naming the field, and nothing changes', async () => {
    const before = await admin.api('GET', '/v1/config');
    const bad = { ...structuredClone(desired), pools: [...structuredClone(desired).pools, { name: 'dup', match: { services: ['*'] }, backends: [{ address: '127.0.0.1:1', weight: 1001 }] }] };
    const res = await admin.api('PUT', '/v1/config', bad);
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['pools[2].backends[0].weight', 'pools[2].match.services[0]']);
    expect((await admin.api('GET', '/v1/config')).body).toEqual(before.body);
  });

  it('If-Match on the whole config guards an apply against a concurrent change', async () => {
    const exported = await admin.api('GET', '/v1/config');
    const etag = exported.headers.get('etag')!;
    await admin.api('PATCH', '/v1/pools/greeter', { slowStartMs: 1000 });
    const res = await admin.api('PUT', '/v1/config', desired, { headers: { 'if-match': etag } });
    expect(res.status).toBe(412);
  });
});

describe('revisions', () => {
  it('each holds the whole config, who and when, and the diff; rollback makes a new revision equal to an old one', async () => {
    const list = await admin.api('GET', '/v1/revisions?limit=2');
    expect(list.body.items.map((r: { number: number }) => r.number)).toEqual([3, 2]);
    expect(list.body.nextCursor).toBe('2');
    expect((await admin.api('GET', `/v1/revisions?limit=2&cursor=${list.body.nextCursor}`)).body.items.map((r: { number: number }) => r.number)).toEqual([1]);

    const one = await admin.api('GET', '/v1/revisions/1');
    expect(one.body).toMatchObject({ number: 1, author: 'bootstrap-admin', createdAt: expect.any(String), message: 'apply configuration' });
    expect(one.body.config.pools.map((p: { name: string }) => p.name)).toEqual(['default', 'greeter']);
    expect(one.body.changes).toHaveLength(6);

    const rollback = await admin.api('POST', '/v1/revisions/1/rollback');
    expect(rollback.status).toBe(200);
    expect(rollback.body).toMatchObject({ revision: 4, changed: true });
    expect((await admin.api('GET', '/v1/config')).body).toEqual(one.body.config);
    const four = await admin.api('GET', '/v1/revisions/4');
    expect(four.body).toMatchObject({ rollbackOf: 1, message: 'rollback to revision 1' });
    expect(four.body.config).toEqual(one.body.config);

    expect((await admin.api('POST', '/v1/revisions/1/rollback')).body).toMatchObject({ revision: 4, changed: false });
    expect((await admin.api('POST', '/v1/revisions/99/rollback')).status).toBe(404);
    expect((await admin.api('GET', '/v1/revisions/99')).status).toBe(404);
  });
});

describe('concurrent writers', () => {
  it('20 parallel PATCHes with the same If-Match: exactly one wins, the rest get 412, the state is the winner\'s', async () => {
    const current = await admin.api('GET', '/v1/pools/greeter');
    const etag = current.headers.get('etag')!;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => admin.api('PATCH', '/v1/pools/greeter', { maxStreamsPerBackend: 100 + i }, { headers: { 'if-match': etag } })),
    );
    const winners = results.filter((r) => r.status === 200);
    expect(winners).toHaveLength(1);
    expect(results.filter((r) => r.status === 412)).toHaveLength(19);
    const after = await admin.api('GET', '/v1/pools/greeter');
    expect(after.body.maxStreamsPerBackend).toBe(winners[0]!.body.maxStreamsPerBackend);
    expect(after.headers.get('etag')).toBe(winners[0]!.headers.get('etag'));
  });

  it('20 parallel PATCHes without If-Match all land, one revision each, none lost', async () => {
    const before = (await admin.api('GET', '/v1/revisions?limit=1')).body.items[0].number as number;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => admin.api('PUT', `/v1/pools/greeter/backends/127.0.0.2:${7000 + i}`, {})));
    expect(results.every((r) => r.status === 201)).toBe(true);
    expect(new Set(results.map((r) => r.body.revision)).size).toBe(20);
    const pool = await admin.api('GET', '/v1/pools/greeter');
    expect(pool.body.backends.filter((b: { address: string }) => b.address.startsWith('127.0.0.2:'))).toHaveLength(20);
    expect((await admin.api('GET', '/v1/revisions?limit=1')).body.items[0].number).toBe(before + 20);
  });
});

describe('the tail policies through the API', () => {
  let own: AdminProcess;
  beforeAll(async () => {
    own = await startAdmin();
    expect((await own.api('PUT', '/v1/config', desired)).status).toBe(200);
  });
  afterAll(async () => {
    await own?.stop();
  });

  it('retry, hedging and retryBudget go through plan and apply, validated by the shared schema', async () => {
    const tail = {
      retry: { maxAttempts: 3, initialBackoffMs: 25, maxBackoffMs: 250, backoffMultiplier: 2, retryableStatusCodes: ['UNAVAILABLE'] },
      hedging: { maxAttempts: 2, delayMs: 50, adaptiveDelay: { percentile: 95, minMs: 10 }, nonFatalStatusCodes: ['UNAVAILABLE'], methods: ['helloworld.Greeter/SayHello'] },
      retryBudget: { percent: 20, minPerSecond: 10 },
    };
    const before = await own.api('GET', '/v1/config');
    const bad = await own.api('PUT', '/v1/pools/greeter', { ...desired.pools[0], retry: { maxAttempts: 9, retryableStatusCodes: ['UNAVAILABLE', 'SOMETIMES'] }, hedging: { methods: ['not a method'] } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(bad.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['hedging.methods[0]', 'retry.maxAttempts', 'retry.retryableStatusCodes[1]']);
    expect((await own.api('GET', '/v1/config')).body).toEqual(before.body);

    const next = structuredClone(desired);
    Object.assign(next.pools[0]!, tail);
    const plan = await own.api('POST', '/v1/config/plan', next);
    expect(plan.status).toBe(200);
    expect(JSON.stringify(plan.body)).toContain('hedging');
    const applied = await own.api('PUT', '/v1/config', next);
    expect(applied.status).toBe(200);
    const pool = (await own.api('GET', '/v1/pools/greeter')).body;
    expect(pool).toMatchObject(tail);
  });
});

describe('the size a balancer can receive', () => {
  let own: AdminProcess;
  beforeAll(async () => {
    own = await startAdmin();
  });
  afterAll(async () => {
    await own?.stop();
  });

  it('refuses with 413, changing nothing, a write that would make the config larger than the admin keeps (16 MiB)', async () => {
    // Each pool is under the 1 MiB body limit; together they pass 16 MiB.
    const labels = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, 'v'.repeat(250)]));
    const pool = (n: number) => ({
      name: `big-${n}`,
      match: { services: [`big.Service${n}`] },
      backends: Array.from({ length: 330 }, (_, i) => ({ address: `127.0.0.1:${10_000 + n * 1000 + i}`, labels })),
    });
    let refused: { status: number; body: { detail: string; limit: number } } | undefined;
    for (let n = 0; n < 24 && refused === undefined; n++) {
      const res = await own.api('PUT', `/v1/pools/big-${n}`, pool(n));
      if (res.status === 413) refused = res;
      else expect(res.status).toBeLessThan(300);
    }
    expect(refused).toBeDefined();
    expect(refused!.body.detail).toMatch(/the admin keeps configurations of at most \d+ bytes/);
    const config = (await own.api('GET', '/v1/config')).body;
    expect(Buffer.byteLength(JSON.stringify(config))).toBeLessThanOrEqual(refused!.body.limit);
    const revisions = (await own.api('GET', '/v1/revisions?limit=1')).body.items[0].number;
    expect(revisions).toBe(config.pools.length); // one revision per accepted pool, none for the refused one
    // An export this large applies back (issue 27): plan and whole-config PUT take bodies past 1 MiB, up to 32 MiB.
    expect(Buffer.byteLength(JSON.stringify(config))).toBeGreaterThan(8 * 1024 * 1024);
    const plan = await own.api('POST', '/v1/config/plan', config);
    expect(plan.status).toBe(200);
    expect(plan.body.changes).toEqual([]);
    const back = await own.api('PUT', '/v1/config', config);
    expect(back.status).toBe(200);
    expect(back.body.changed).toBe(false);
    const tooBig = await own.api('PUT', '/v1/config', undefined, { raw: JSON.stringify({ pools: [{ name: 'x', match: { authority: 'x' }, labels: { a: 'x'.repeat(33 * 1024 * 1024) } }] }) });
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.detail).toContain('33554432');
  }, 60_000);
});

describe('history stored as patches between checkpoints', () => {
  it('every revision reads back and rolls back exactly, across checkpoints and a restart; a single-backend change stores a patch of that backend', async () => {
    const own = await startAdmin();
    try {
      const backends = Array.from({ length: 20 }, (_, i) => ({ address: `127.0.0.1:${7000 + i}` }));
      expect((await own.api('PUT', '/v1/config', { pools: [{ name: 'h', match: { services: ['*'] }, backends }, { name: 'other', match: { authority: 'o' }, backends }] })).status).toBe(200);
      // Revisions 2..260: one backend's weight each (a checkpoint every 256 revisions).
      const sampled = [1, 2, 3, 40, 255, 256, 257, 258, 259, 260];
      const expected = new Map<number, unknown>([[1, (await own.api('GET', '/v1/config')).body]]);
      for (let n = 2; n <= 260; n++) {
        const res = await own.api('PUT', `/v1/pools/h/backends/127.0.0.1:${7000 + (n % 20)}`, { weight: n });
        expect(res.status).toBe(200);
        if (sampled.includes(n)) expected.set(n, (await own.api('GET', '/v1/config')).body);
      }
      const check = async (label: string) => {
        for (const n of sampled) {
          const rev = await own.api('GET', `/v1/revisions/${n}`);
          expect({ label, n, status: rev.status, config: rev.body.config }).toEqual({ label, n, status: 200, config: expected.get(n) });
        }
      };
      await check('before restart');
      if (own.dbFile !== '') {
        const db = new Database(own.dbFile, { readonly: true });
        try {
          const rows = db.prepare('SELECT number, config IS NOT NULL AS checkpoint, length(patch) AS patchBytes FROM Revision ORDER BY number').all() as { number: number; checkpoint: number; patchBytes: number | null }[];
          expect(rows.filter((r) => r.checkpoint === 1).map((r) => r.number)).toEqual([1, 257]);
          expect(Math.max(...rows.map((r) => r.patchBytes ?? 0))).toBeLessThan(200);
        } finally {
          db.close();
        }
      }
      await own.stop();
      const again = await startAdmin({ dataDir: own.dataDir, db: own.db });
      try {
        // The restarted admin knows its newest checkpoint and reads the same history.
        const roll = await again.api('POST', '/v1/revisions/40/rollback');
        expect(roll.status).toBe(200);
        expect((await again.api('GET', '/v1/config')).body).toEqual(expected.get(40));
        expect((await again.api('GET', `/v1/revisions/${roll.body.revision}`)).body.config).toEqual(expected.get(40));
      } finally {
        await again.stop();
      }
    } finally {
      await own.stop();
    }
  }, 90_000);
});

describe('--revision-retention', () => {
  it('keeps the newest N revisions: older ones answer 404 (also to rollback), numbering goes on without reuse', async () => {
    const kept = await startAdmin({ args: ['--revision-retention', '3'] });
    try {
      for (let w = 1; w <= 6; w++) {
        const r = await kept.api('PUT', '/v1/config', { pools: [{ name: 'r', match: { services: ['*'] }, backends: [{ address: '127.0.0.1:5000', weight: w }] }] });
        expect(r.status).toBe(200);
      }
      const list = await kept.api('GET', '/v1/revisions');
      expect(list.body.items.map((r: { number: number }) => r.number)).toEqual([6, 5, 4]);
      const gone = await kept.api('GET', '/v1/revisions/3');
      expect(gone.status).toBe(404);
      expect(gone.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect((await kept.api('POST', '/v1/revisions/2/rollback')).status).toBe(404);
      // The oldest kept one still rolls back exactly; the new revision is 7 and 4 goes.
      const rollback = await kept.api('POST', '/v1/revisions/4/rollback');
      expect(rollback.status).toBe(200);
      expect(rollback.body.revision).toBe(7);
      expect((await kept.api('GET', '/v1/config')).body.pools[0].backends[0].weight).toBe(4);
      expect((await kept.api('GET', '/v1/revisions')).body.items.map((r: { number: number }) => r.number)).toEqual([7, 6, 5]);
      // Single-backend changes are patches: the rows kept go back to the oldest kept one's checkpoint, no further.
      for (let w = 8; w <= 270; w++) expect((await kept.api('PUT', '/v1/pools/r/backends/127.0.0.1:5000', { weight: w })).status).toBe(200);
      expect((await kept.api('GET', '/v1/revisions')).body.items.map((r: { number: number }) => r.number)).toEqual([270, 269, 268]);
      expect((await kept.api('GET', '/v1/revisions/268')).body.config.pools[0].backends[0].weight).toBe(268);
      expect((await kept.api('GET', '/v1/revisions/267')).status).toBe(404);
      if (kept.dbFile !== '') {
        const db = new Database(kept.dbFile, { readonly: true });
        try {
          const { rows, oldest } = db.prepare('SELECT count(*) AS rows, min(number) AS oldest FROM Revision').get() as { rows: number; oldest: number };
          expect(rows).toBeLessThanOrEqual(3 + 255);
          expect(oldest).toBeGreaterThan(7);
        } finally {
          db.close();
        }
      }
    } finally {
      await kept.stop();
    }
  });

  it('refuses a negative or non-numeric retention at start', async () => {
    await expect(startAdmin({ args: ['--revision-retention', '-1'] })).rejects.toThrow(/--revision-retention must be a whole number/);
    await expect(startAdmin({ args: ['--revision-retention', 'all'] })).rejects.toThrow(/--revision-retention must be a whole number/);
  });
});
