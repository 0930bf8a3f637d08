import { describe, expect, it } from '@jest/globals';
import * as fc from 'fast-check';
import { canonicalConfig, stableStringify } from './canonical';
import { validateConfig } from './parse';
import type { SwitchboardConfig } from './schema';
import { validateConfigSteps } from './validate-steps';

const cfg = (raw: unknown): SwitchboardConfig => {
  const r = validateConfig(raw);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return canonicalConfig(r.config);
};
const pause = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Raw configs over a small name space; some fields left to their defaults, some values invalid. */
const rawArb = fc.record({
  healthPolicies: fc.array(fc.record({ name: fc.constantFrom('h1', 'h2'), active: fc.record({ intervalMs: fc.constantFrom(500, 1000, -5) }) }), { maxLength: 3 }),
  pools: fc.array(
    fc.record(
      {
        name: fc.constantFrom('a', 'b', 'c'),
        match: fc.constantFrom({ services: ['svc.A'] }, { services: ['svc.B'] }, { authority: 'x' }, {}),
        healthPolicy: fc.constantFrom('h1', 'h2', 'nope'),
        algorithm: fc.constantFrom('least_conn', 'round_robin', 'fastest'),
        unknownKey: fc.constant(1),
        maxQueuedCalls: fc.constantFrom(1000, 5),
        backends: fc.array(
          fc.record({ address: fc.constantFrom('127.0.0.1:5000', '127.0.0.1:5001', '127.0.0.1:5002', 'not an address'), weight: fc.constantFrom(1, 2, 0), drain: fc.constantFrom(false, true, 'yes'), labels: fc.constantFrom({}, { a: 'b' }) }, { requiredKeys: ['address'] }),
          { maxLength: 4 },
        ),
      },
      { requiredKeys: ['name', 'match', 'backends'] },
    ),
    { maxLength: 3 },
  ),
});

const knownArb = fc.constantFrom<SwitchboardConfig | null>(
  null,
  cfg({ healthPolicies: [{ name: 'h1', active: { intervalMs: 500 } }], pools: [{ name: 'a', match: { services: ['svc.A'] }, healthPolicy: 'h1', backends: [{ address: '127.0.0.1:5000' }, { address: '127.0.0.1:5001', weight: 2 }] }] }),
  cfg({ pools: [{ name: 'a', match: { services: ['svc.A'] }, maxQueuedCalls: 5, backends: [{ address: '127.0.0.1:5000', drain: true }, { address: '127.0.0.1:5002', labels: { a: 'b' } }] }] }),
  cfg({ pools: [{ name: 'b', match: { authority: 'x' }, algorithm: 'round_robin', backends: [{ address: '127.0.0.1:5002' }] }] }),
);

describe('validateConfigSteps', () => {
  it('gives what validateConfig gives (result or errors), whatever is known', async () => {
    let valid = 0;
    await fc.assert(
      fc.asyncProperty(rawArb, knownArb, async (raw, known) => {
        const expected = validateConfig(raw);
        if (expected.ok) valid++;
        const got = await validateConfigSteps(JSON.parse(JSON.stringify(raw)), known, pause);
        expect(got.ok).toBe(expected.ok);
        if (got.ok && expected.ok) expect(stableStringify(got.config)).toBe(stableStringify(expected.config));
        else expect(got).toEqual(expected);
      }),
      // A fixed seed: without one, a run drew 39 valid configs of 400 and failed the bound below.
      { numRuns: 400, seed: 20261205 },
    );
    expect(valid).toBeGreaterThan(40); // both outcomes are exercised
  });

  it('reuses the known resources a change did not touch, and validates the one it did', async () => {
    const known = cfg({ pools: Array.from({ length: 50 }, (_, i) => ({ name: `p${i}`, match: { services: [`s.S${i}`] }, backends: [{ address: '127.0.0.1:5000' }, { address: '127.0.0.1:5001' }] })) });
    const candidate = { ...known, pools: known.pools.map((p, i) => (i === 7 ? { ...p, backends: [p.backends[0]!, { ...p.backends[1]!, weight: 4 }] } : p)) };
    const got = await validateConfigSteps(candidate, known, pause);
    expect(got.ok).toBe(true);
    if (!got.ok) return;
    expect(got.config.pools[3]).toBe(known.pools[3]);
    expect(got.config.pools[7]!.backends[0]).toBe(known.pools[7]!.backends[0]);
    expect(got.config.pools[7]!.backends[1]!.weight).toBe(4);
    // The same from a parsed body (new objects, equal as JSON): the untouched pools are still the known ones.
    const parsed = await validateConfigSteps(JSON.parse(JSON.stringify(candidate)), known, pause);
    expect(parsed.ok && parsed.config.pools[3] === known.pools[3] && parsed.config.pools[7] !== known.pools[7]).toBe(true);
    // The short form a client sends, defaults left out ({"address": ...}, no weight): reused as well.
    const short = { pools: Array.from({ length: 50 }, (_, i) => ({ name: `p${i}`, match: { services: [`s.S${i}`] }, backends: [{ address: '127.0.0.1:5000' }, { address: '127.0.0.1:5001', weight: i === 7 ? 4 : 1 }] })) };
    const fromShort = await validateConfigSteps(short, known, pause);
    if (!fromShort.ok) throw new Error('the short form is valid');
    const named = (c: SwitchboardConfig, name: string) => c.pools.find((p) => p.name === name)!;
    expect(named(fromShort.config, 'p3')).toBe(named(known, 'p3'));
    expect(named(fromShort.config, 'p7').backends[0]).toBe(named(known, 'p7').backends[0]);
    expect(named(fromShort.config, 'p7').backends[1]!.weight).toBe(4);
    const bad = { ...known, pools: known.pools.map((p, i) => (i === 9 ? { ...p, backends: [{ address: '127.0.0.1:5000', weight: -1 }] } : p)) };
    expect(await validateConfigSteps(bad, known, pause)).toEqual(validateConfig(bad));
  });

  it('yields to the event loop between slices of a big config', async () => {
    const big = { pools: Array.from({ length: 2000 }, (_, i) => ({ name: `p${i}`, match: { services: [`s.S${i}`] }, backends: [{ address: '127.0.0.1:5000' }] })) };
    let pauses = 0;
    const got = await validateConfigSteps(big, null, () => {
      pauses++;
      return pause();
    }, 0);
    expect(got.ok).toBe(true);
    expect(pauses).toBeGreaterThan(100);
  });
});
