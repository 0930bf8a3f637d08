import { describe, expect, it } from '@jest/globals';
import * as fc from 'fast-check';
import { canonicalConfig } from './canonical';
import { configJson, configJsonBytes } from './config-json';
import { validateConfig } from './parse';
import type { SwitchboardConfig } from './schema';

const bytesOf = (cfg: unknown) => Buffer.byteLength(JSON.stringify(cfg));

// Labels in any script (multi-byte UTF-8, escapes such as quotes and control characters).
const text = fc.string({ unit: 'binary', maxLength: 8 });
const configArb = fc
  .record({
    healthPolicies: fc.uniqueArray(fc.record({ name: fc.constantFrom('h1', 'h2', 'h3'), active: fc.record({ intervalMs: fc.integer({ min: 100, max: 60_000 }) }) }), { maxLength: 3, selector: (p) => p.name }),
    pools: fc.uniqueArray(
      fc.record({
        name: fc.constantFrom('a', 'b', 'c', 'd'),
        routeByAuthority: fc.boolean(),
        backends: fc.uniqueArray(fc.record({ address: fc.integer({ min: 1024, max: 65535 }).map((p) => `127.0.0.1:${p}`), weight: fc.integer({ min: 1, max: 1000 }), labels: fc.dictionary(fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }), text, { maxKeys: 3 }) }, { requiredKeys: ['address'] }), { maxLength: 5, selector: (b) => b.address }),
      }),
      { maxLength: 4, selector: (p) => p.name },
    ),
  })
  .map((raw) => {
    // Each pool routes its own service or authority (two pools may not route the same one).
    const pools = raw.pools.map(({ routeByAuthority, ...p }) => ({ ...p, match: routeByAuthority ? { authority: `${p.name}.example` } : { services: [`svc.${p.name}`] } }));
    const r = validateConfig({ ...raw, pools });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return canonicalConfig(r.config);
  });

describe('configJsonBytes', () => {
  it('is the byte length of the config JSON, for any config (multi-byte and escaped text too)', () => {
    fc.assert(fc.property(configArb, (cfg) => configJsonBytes(cfg) === bytesOf(cfg)), { numRuns: 300 });
  });

  it('stays exact for a config made from another (untouched pools shared, one changed, added or removed)', () => {
    fc.assert(
      fc.property(configArb, fc.nat(), fc.integer({ min: 1, max: 1000 }), fc.constantFrom('change', 'add', 'remove'), (cfg, which, weight, action) => {
        configJsonBytes(cfg); // the sizes of cfg's resources are now known
        const i = cfg.pools.length === 0 ? 0 : which % cfg.pools.length;
        let pools = cfg.pools;
        if (action === 'add') pools = [...cfg.pools, { ...(cfg.pools[i] ?? { name: 'x', match: {}, backends: [] }), name: 'zz' } as SwitchboardConfig['pools'][number]];
        else if (action === 'remove') pools = cfg.pools.filter((_, j) => j !== i);
        else if (cfg.pools[i] !== undefined && cfg.pools[i]!.backends.length > 0) {
          const p = cfg.pools[i]!;
          pools = cfg.pools.map((q, j) => (j === i ? { ...p, backends: p.backends.map((b, k) => (k === 0 ? { ...b, weight } : b)) } : q));
        }
        const next: SwitchboardConfig = { ...cfg, pools };
        return configJsonBytes(next) === bytesOf(next);
      }),
      { numRuns: 300 },
    );
  });

  it('configJson is JSON.stringify, made once per config object', () => {
    fc.assert(fc.property(configArb, (cfg) => configJson(cfg) === JSON.stringify(cfg) && configJson(cfg) === configJson(cfg)), { numRuns: 100 });
  });

  it('counts the empty config', () => {
    const empty: SwitchboardConfig = { healthPolicies: [], pools: [] };
    expect(configJsonBytes(empty)).toBe(bytesOf(empty));
    expect(configJsonBytes(empty)).toBe('{"healthPolicies":[],"pools":[]}'.length);
  });
});
