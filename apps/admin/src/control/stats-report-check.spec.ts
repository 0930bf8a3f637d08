import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { GRPC_CODE_NAMES, type SwitchboardConfig } from '#config';
import type { StatsReport } from '#proto';
import { checkStatsReport, MAX_ACTIVE_STREAMS, MAX_DISCOVERED, MAX_LATENCY_MS } from './stats-report-check';

const config = {
  healthPolicies: [],
  pools: [
    { name: 'a', backends: [{ address: '127.0.0.1:1' }, { address: '127.0.0.1:2' }] },
    { name: 'b', backends: [{ address: '127.0.0.2:1' }] },
  ],
} as unknown as SwitchboardConfig;

const good = (over: Record<string, unknown> = {}): any => ({ address: '127.0.0.1:1', activeStreams: 2, callsByCode: { OK: 5, UNAVAILABLE: 1 }, p50Ms: 1, p90Ms: 2, p99Ms: 3, healthy: true, ejected: false, draining: false, ...over });
const report = (pools: unknown): StatsReport => ({ atMs: 1, appliedRevision: 1, pools: pools as StatsReport['pools'] });

describe('checkStatsReport', () => {
  it('keeps known pools and backends once, drops the rest', () => {
    const r = checkStatsReport(report([{ name: 'a', panic: false, backends: [good(), good({ activeStreams: 9 }), good({ address: '10.9.9.9:1' })] }, { name: 'ghost', panic: true, backends: [good()] }]), config);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.report.pools.map((p) => p.name)).toEqual(['a']);
    expect(r.report.pools[0]!.backends).toHaveLength(1);
    expect(r.report.pools[0]!.backends[0]!.activeStreams).toBe(2);
    expect(r.dropped).toBe(4); // two backends of "a", the pool "ghost" and its backend
  });

  it('a discovering pool keeps the backends its balancers found (source "dns"), at most MAX_DISCOVERED, with valid addresses only', () => {
    const discovering = { healthPolicies: [], pools: [{ name: 'd', discovery: { dns: { name: 'grpc.svc.test', type: 'A', port: 1 } }, backends: [{ address: '127.0.0.1:1' }] }] } as unknown as SwitchboardConfig;
    const found = Array.from({ length: MAX_DISCOVERED + 50 }, (_, i) => good({ address: `127.1.${i >> 8}.${i & 255}:1`, source: 'dns' }));
    const hostile = [good({ address: 'not an address', source: 'dns' }), good({ address: '127.0.0.9:1' }), good({ address: `${'a'.repeat(300)}:1`, source: 'dns' })];
    const r = checkStatsReport(report([{ name: 'd', panic: false, backends: [good(), ...hostile, ...found] }]), discovering);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const kept = r.report.pools[0]!.backends;
    expect(kept).toHaveLength(1 + MAX_DISCOVERED);
    expect(kept[0]).toMatchObject({ address: '127.0.0.1:1', source: 'static' });
    expect(kept.slice(1).every((b) => b.source === 'dns')).toBe(true);
    expect(r.dropped).toBe(hostile.length + 50);
    // A pool without discovery keeps only its static backends, whatever they say of themselves.
    const plain = checkStatsReport(report([{ name: 'a', panic: false, backends: [good({ address: '127.0.0.7:1', source: 'dns' })] }]), config);
    expect(plain.ok && plain.report.pools[0]!.backends).toEqual([]);
  });

  it('streams ended by reason: known reasons and counts only', () => {
    const ok = checkStatsReport(report([{ name: 'a', panic: false, streamsEnded: { rebalance: 3, max_age: 0 }, backends: [] }]), config);
    expect(ok.ok && { ...ok.report.pools[0]!.streamsEnded }).toEqual({ rebalance: 3, max_age: 0 });
    for (const streamsEnded of ['{"constructor": 1}', '{"rebalance": -1}', '{"rebalance": 1.5}', '{"__proto__": 1}', '"x"', '{"max_age": 1e300}']) {
      expect(checkStatsReport(report([{ name: 'a', panic: false, streamsEnded: JSON.parse(streamsEnded), backends: [] }]), config).ok).toBe(false);
    }
  });

  it('counts in a map without a prototype; a status name that is not one refuses the report', () => {
    const ok = checkStatsReport(report([{ name: 'a', panic: false, backends: [good()] }]), config);
    expect(ok.ok && Object.getPrototypeOf(ok.report.pools[0]!.backends[0]!.callsByCode)).toBeNull();
    for (const code of ['constructor', '__proto__', 'toString', 'ok', '']) {
      const r = checkStatsReport(report([{ name: 'a', panic: false, backends: [good({ callsByCode: JSON.parse(`{"${code}": 1}`) })] }]), config);
      expect(r.ok).toBe(false);
    }
  });

  it('refuses absurd values, naming the field', () => {
    for (const [over, field] of [[{ activeStreams: 4294967295 }, 'activeStreams'], [{ p99Ms: 1e308 }, 'p99Ms'], [{ p99Ms: -5 }, 'p99Ms'], [{ p50Ms: Number.NaN }, 'p50Ms'], [{ activeStreams: 1.5 }, 'activeStreams'], [{ callsByCode: { OK: -1 } }, 'callsByCode.OK']] as const) {
      const r = checkStatsReport(report([{ name: 'a', panic: false, backends: [good(over)] }]), config);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toContain(field);
    }
  });

  it('never throws, and whatever it keeps is in range (fast-check)', () => {
    const num = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(0, -1, 2 ** 32, 2 ** 53, Infinity, Number.NaN));
    const backend = fc.record({
      address: fc.constantFrom('127.0.0.1:1', '127.0.0.1:2', '127.0.0.2:1', 'x', ''),
      activeStreams: num,
      callsByCode: fc.dictionary(fc.oneof(fc.constantFrom(...GRPC_CODE_NAMES), fc.string({ maxLength: 12 })), num, { maxKeys: 4 }),
      p50Ms: num,
      p90Ms: num,
      p99Ms: num,
      healthy: fc.anything(),
      ejected: fc.boolean(),
      draining: fc.boolean(),
      unreachable: fc.anything(),
      lastError: fc.anything(),
    });
    const pool = fc.record({ name: fc.constantFrom('a', 'b', 'c', '__proto__'), panic: fc.anything(), failure: fc.anything(), backends: fc.array(backend, { maxLength: 6 }) });
    fc.assert(
      fc.property(fc.array(pool, { maxLength: 5 }), (pools) => {
        const r = checkStatsReport(report(pools), config);
        if (!r.ok) return;
        for (const p of r.report.pools) {
          expect(['a', 'b']).toContain(p.name);
          expect(new Set(p.backends.map((b) => b.address)).size).toBe(p.backends.length);
          for (const b of p.backends) {
            expect(Number.isInteger(b.activeStreams) && b.activeStreams >= 0 && b.activeStreams <= MAX_ACTIVE_STREAMS).toBe(true);
            for (const v of [b.p50Ms, b.p90Ms, b.p99Ms]) expect(v >= 0 && v <= MAX_LATENCY_MS).toBe(true);
            for (const [code, n] of Object.entries(b.callsByCode)) {
              expect(GRPC_CODE_NAMES as readonly string[]).toContain(code);
              expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
            }
            expect(typeof b.healthy).toBe('boolean');
            expect(typeof b.lastError).toBe('string');
          }
        }
      }),
      { numRuns: 500, seed: 20261205 },
    );
  });
});
