/** Route matching by GRPCRoute precedence, and exact weighted splits. */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { routeSchema, type RouteConfig } from '#config';
import { RouteTable } from './route-table';

const pools = new Map(['v1', 'v2', 'shadow', 'export', 'canary', 'host'].map((name) => [name, { name }]));
const route = (r: unknown): RouteConfig => routeSchema.parse(r);
const pick = (t: RouteTable<{ name: string }>, path: string, headers: Record<string, string> = {}, authority = 'api.example.com'): string | undefined => {
  const slash = path.lastIndexOf('/');
  return t.match(path.slice(1, slash), path.slice(slash + 1), authority, headers)?.pick()?.pool.name;
};

describe('RouteTable', () => {
  const table = new RouteTable(
    [
      // Order in the file does not matter: the header match wins over the bare service match.
      route({ name: 'greeter', rules: [{ matches: [{ method: { service: 'helloworld.Greeter' } }], backends: [{ pool: 'v1' }] }, { matches: [{ method: { service: 'helloworld.Greeter' }, headers: [{ name: 'x-canary', value: 'always' }] }], backends: [{ pool: 'canary' }] }] }),
      route({ name: 'export', rules: [{ matches: [{ method: { service: 'helloworld.Greeter', method: 'Export' } }], backends: [{ pool: 'export' }] }] }),
      route({ name: 'by-host', hostnames: ['*.internal', 'exact.internal'], rules: [{ backends: [{ pool: 'host' }] }] }),
    ],
    pools,
  );

  it('a method match beats a service match; a header match beats none; otherwise the service', () => {
    expect(pick(table, '/helloworld.Greeter/SayHello')).toBe('v1');
    expect(pick(table, '/helloworld.Greeter/Export')).toBe('export');
    expect(pick(table, '/helloworld.Greeter/SayHello', { 'x-canary': 'always' })).toBe('canary');
    expect(pick(table, '/helloworld.Greeter/SayHello', { 'x-canary': 'sometimes' })).toBe('v1');
  });

  it('hostnames: a route with hostnames takes only those authorities (port ignored), and the longest hostname wins over a service match', () => {
    expect(pick(table, '/other.Svc/Get')).toBeUndefined(); // no route: the pools' own match decides
    expect(pick(table, '/other.Svc/Get', {}, 'a.internal:443')).toBe('host');
    expect(pick(table, '/helloworld.Greeter/SayHello', {}, 'exact.internal')).toBe('host');
    expect(pick(table, '/other.Svc/Get', {}, 'internal')).toBeUndefined(); // "*.internal" needs a label before it
  });

  it('90/10 is exactly 90/10 over every 10 calls (smooth weighted round robin), and a weight of 0 takes a pool out', () => {
    const t = new RouteTable([route({ name: 'split', rules: [{ backends: [{ pool: 'v1', weight: 90 }, { pool: 'v2', weight: 10 }, { pool: 'shadow', weight: 0 }] }] })], pools);
    const counts = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const p = pick(t, '/a.B/C')!;
      counts.set(p, (counts.get(p) ?? 0) + 1);
      if ((i + 1) % 10 === 0) expect(counts.get('v2')).toBe((i + 1) / 10);
    }
    expect(Object.fromEntries(counts)).toEqual({ v1: 900, v2: 100 });
  });

  it('mirror: exactly percent of the rule\'s calls', () => {
    const t = new RouteTable([route({ name: 'm', rules: [{ backends: [{ pool: 'v1' }], mirror: { pool: 'shadow', percent: 10 } }] })], pools);
    const rule = t.match('a.B', 'C', undefined, {})!;
    let n = 0;
    for (let i = 0; i < 1000; i++) if (rule.mirrorThisCall()) n++;
    expect(n).toBe(100);
  });

  it('header edits: remove, set, add', () => {
    const t = new RouteTable([route({ name: 'h', rules: [{ backends: [{ pool: 'v1' }], requestHeaders: { set: { 'x-route': 'canary' }, add: { 'x-tag': 'b' }, remove: ['x-debug'] } }] })], pools);
    const rule = t.match('a.B', 'C', undefined, {})!;
    expect(rule.editHeaders({ 'x-debug': '1', 'x-route': 'old', 'x-tag': 'a', keep: 'y' })).toEqual({ 'x-route': 'canary', 'x-tag': ['a', 'b'], keep: 'y' });
  });

  it('fast-check: any weights split exactly in proportion over one full cycle', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 5 }), (weights) => {
        const names = ['v1', 'v2', 'shadow', 'export', 'canary'];
        const t = new RouteTable([route({ name: 'w', rules: [{ backends: weights.map((weight, i) => ({ pool: names[i], weight })) }] })], pools);
        const total = weights.reduce((a, b) => a + b, 0);
        const counts = new Map<string, number>();
        for (let i = 0; i < total; i++) {
          const p = pick(t, '/a.B/C')!;
          counts.set(p, (counts.get(p) ?? 0) + 1);
        }
        weights.forEach((w, i) => expect(counts.get(names[i]!) ?? 0).toBe(w));
      }),
      { numRuns: 200 },
    );
  });
});
