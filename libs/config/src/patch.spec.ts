import { describe, expect, it } from '@jest/globals';
import * as fc from 'fast-check';
import { canonicalConfig, configTag, stableStringify } from './canonical';
import { diffConfigs } from './diff';
import { validateConfig } from './parse';
import { applyPatch, applyPatches, patchFromDiff } from './patch';
import type { SwitchboardConfig } from './schema';

const cfg = (raw: unknown): SwitchboardConfig => {
  const r = validateConfig(raw);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return canonicalConfig(r.config);
};

/** Random configs over a small name space, so two of them share, change and drop resources. */
const configArb = fc
  .record({
    policies: fc.uniqueArray(fc.record({ name: fc.constantFrom('h1', 'h2', 'h3'), intervalMs: fc.constantFrom(500, 1000, 2000) }), { selector: (p) => p.name, maxLength: 3 }),
    pools: fc.uniqueArray(
      fc.record({
        name: fc.constantFrom('a', 'b', 'c', 'd'),
        algorithm: fc.constantFrom('least_conn', 'round_robin', 'p2c'),
        labels: fc.option(fc.dictionary(fc.constantFrom('team', 'app.kubernetes.io/name'), fc.constantFrom('x', 'y')), { nil: undefined }),
        backends: fc.uniqueArray(
          fc.record({ port: fc.integer({ min: 5000, max: 5005 }), weight: fc.integer({ min: 1, max: 3 }), drain: fc.boolean(), labels: fc.option(fc.dictionary(fc.constantFrom('zone', 'a.b'), fc.constantFrom('1', '2')), { nil: undefined }) }),
          { selector: (b) => b.port, maxLength: 5 },
        ),
      }),
      { selector: (p) => p.name, maxLength: 4 },
    ),
    routes: fc.uniqueArray(fc.record({ name: fc.constantFrom('r1', 'r2', 'r3'), weight: fc.integer({ min: 1, max: 100 }), header: fc.option(fc.constantFrom('a', 'b'), { nil: undefined }) }), { selector: (r) => r.name, maxLength: 3 }),
  })
  .map(({ policies, pools, routes }) =>
    cfg({
      ...(pools.length > 0 && routes.length > 0
        ? { routes: routes.map((r) => ({ name: r.name, rules: [{ ...(r.header ? { matches: [{ headers: [{ name: 'x-h', value: r.header }] }] } : {}), backends: pools.map((p) => ({ pool: p.name, weight: r.weight })) }] })) }
        : {}),
      healthPolicies: policies.map((p) => ({ name: p.name, active: { intervalMs: p.intervalMs } })),
      pools: pools.map((p) => ({
        name: p.name,
        match: { services: [`svc.S${p.name}`] },
        algorithm: p.algorithm,
        ...(p.labels ? { labels: p.labels } : {}),
        backends: p.backends.map((b) => ({ address: `127.0.0.1:${b.port}`, weight: b.weight, drain: b.drain, ...(b.labels ? { labels: b.labels } : {}) })),
      })),
    }),
  );

describe('config patches', () => {
  it('applied to the config they were made from, give exactly the next one (also after a JSON round trip)', () => {
    fc.assert(
      fc.property(configArb, configArb, (before, after) => {
        const patch = JSON.parse(JSON.stringify(patchFromDiff(after, diffConfigs(before, after)))) as ReturnType<typeof patchFromDiff>;
        const frozen = stableStringify(before);
        const result = applyPatch(before, patch);
        expect(stableStringify(result)).toBe(stableStringify(after));
        expect(stableStringify(before)).toBe(frozen); // the base is not modified
      }),
      { numRuns: 500 },
    );
  });

  it('applied several at once give what applying them one by one gives', () => {
    fc.assert(
      fc.property(fc.array(configArb, { minLength: 2, maxLength: 5 }), (configs) => {
        const patches = configs.slice(1).map((c, i) => patchFromDiff(c, diffConfigs(configs[i]!, c)));
        expect(stableStringify(applyPatches(configs[0]!, patches))).toBe(stableStringify(configs[configs.length - 1]));
      }),
      { numRuns: 300 },
    );
  });

  it('of one backend change carry that backend only', () => {
    const pools = Array.from({ length: 100 }, (_, i) => ({ name: `p${i}`, match: { services: [`s.S${i}`] }, backends: Array.from({ length: 10 }, (_, j) => ({ address: `127.0.0.1:${6000 + j}` })) }));
    const before = cfg({ pools });
    const after = cfg({ pools: pools.map((p, i) => (i === 42 ? { ...p, backends: p.backends.map((b, j) => (j === 3 ? { ...b, weight: 9 } : b)) } : p)) });
    const patch = patchFromDiff(after, diffConfigs(before, after));
    expect(patch).toEqual({ backends: { put: [{ pool: 'p42', backend: { address: '127.0.0.1:6003', weight: 9, drain: false } }] } });
    expect(JSON.stringify(patch).length).toBeLessThan(120);
    const result = applyPatch(before, patch);
    expect(result.pools[41]).toBe(before.pools[41]); // untouched pools are shared, not copied
    expect(stableStringify(result)).toBe(stableStringify(after));
  });

  it('refuses a backend put into a pool that does not exist (a patch against the wrong base)', () => {
    const before = cfg({ pools: [] });
    expect(() => applyPatch(before, { backends: { put: [{ pool: 'nope', backend: { address: '127.0.0.1:1', weight: 1, drain: false } }] } })).toThrow(/pool "nope"/);
  });
});

describe('configTag', () => {
  it('is equal for equal configs whatever their objects, and differs when anything differs', () => {
    fc.assert(
      fc.property(configArb, configArb, (a, b) => {
        const copy = canonicalConfig(JSON.parse(JSON.stringify(a)) as SwitchboardConfig);
        expect(configTag(copy)).toBe(configTag(a));
        expect(configTag(a) === configTag(b)).toBe(stableStringify(a) === stableStringify(b));
        // After a patch, with the untouched objects shared: the same tag as the config built afresh.
        const patched = applyPatch(a, patchFromDiff(b, diffConfigs(a, b)));
        expect(configTag(patched)).toBe(configTag(canonicalConfig(JSON.parse(JSON.stringify(b)) as SwitchboardConfig)));
      }),
      { numRuns: 300 },
    );
  });
});
