/** Merging workers' /state and stats: counts add up once per backend, verdicts are the primary's. */
import { describe, expect, it } from '@jest/globals';
import * as fc from 'fast-check';
import { CallStats } from '../ops/call-stats';
import type { BackendState, BalancerState } from '../ops/state';
import { mergeStates, mergeStats } from './merge';

const backend = (address: string, over: Partial<BackendState> = {}): BackendState => ({
  address,
  source: 'static',
  oldestStreamAgeMs: null,
  weight: 1,
  effectiveWeight: 1,
  activeStreams: 0,
  healthy: true,
  ejected: false,
  draining: false,
  reachable: true,
  lastError: null,
  available: true,
  totalCalls: 0,
  failedCalls: 0,
  sessions: 0,
  latencyMs: null,
  ...over,
});

const state = (backends: BackendState[], revision = 3): BalancerState => ({
  revision,
  pools: [{ name: 'p', algorithm: 'least_conn', match: { services: ['*'] }, maxStreamsPerBackend: 0, panic: false, failure: null, queued: 0, available: backends.length, backends }],
});

describe('mergeStates', () => {
  it('adds counts, keeps the primary\'s verdicts and revision, and reports each worker', () => {
    const primary = state([backend('a:1', { healthy: false }), backend('a:2')], 7);
    const w1 = { ...state([backend('a:1', { activeStreams: 2, totalCalls: 10, sessions: 1, latencyMs: 3 }), backend('a:2', { activeStreams: 1, reachable: false, available: false, lastError: 'refused' })], 6), pid: 11 };
    const w2 = { ...state([backend('a:1', { activeStreams: 3, totalCalls: 5, sessions: 1, latencyMs: 9 }), backend('a:2', { activeStreams: 4 })]), pid: 12 };
    const merged = mergeStates(primary, [w1, w2], { count: 2, restarts: 1 });
    expect(merged.revision).toBe(7);
    expect(merged.workers).toEqual({ count: 2, restarts: 1, processes: [{ pid: 11, activeStreams: 3 }, { pid: 12, activeStreams: 7 }] });
    const [a1, a2] = merged.pools[0]!.backends;
    expect(a1).toMatchObject({ activeStreams: 5, totalCalls: 15, sessions: 2, latencyMs: 9, healthy: false });
    expect(a2).toMatchObject({ activeStreams: 5, reachable: true, available: true, lastError: 'refused' });
  });

  it('counts every stream exactly once, whatever the workers report (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.array(fc.nat(1000), { minLength: 3, maxLength: 3 }), { minLength: 1, maxLength: 8 }), (workers) => {
        const addresses = ['x:1', 'x:2', 'x:3'];
        const merged = mergeStates(
          state(addresses.map((a) => backend(a))),
          workers.map((counts, i) => ({ ...state(addresses.map((a, j) => backend(a, { activeStreams: counts[j]! }))), pid: i })),
          { count: workers.length, restarts: 0 },
        );
        const total = workers.flat().reduce((x, y) => x + y, 0);
        expect(merged.pools[0]!.backends.reduce((n, b) => n + b.activeStreams, 0)).toBe(total);
        expect(merged.workers.processes.reduce((n, p) => n + p.activeStreams, 0)).toBe(total);
      }),
    );
  });
});

describe('mergeStats', () => {
  it('adds calls by code and takes percentiles over every worker\'s window together', () => {
    const fast = new CallStats();
    const slow = new CallStats();
    for (let i = 0; i < 98; i++) fast.record(0, 0.001);
    slow.record(14, 1);
    slow.record(14, 1);
    const primary = [{ name: 'p', panic: false, backends: [{ address: 'a:1', activeStreams: 0, callsByCode: {}, p50Ms: 0, p90Ms: 0, p99Ms: 0, healthy: true, ejected: true, draining: false }] }];
    const share = (stats: CallStats, active: number) => [
      { name: 'p', panic: false, backends: [{ address: 'a:1', activeStreams: active, callsByCode: stats.callsByCode(), p50Ms: 0, p90Ms: 0, p99Ms: 0, window: stats.takeEncodedWindow(), healthy: true, ejected: false, draining: false }] },
    ];
    const [pool] = mergeStats(primary, [share(fast, 2), share(slow, 1)]);
    const b = pool!.backends[0]!;
    expect(b.activeStreams).toBe(3);
    expect(b.callsByCode).toEqual({ OK: 98, UNAVAILABLE: 2 });
    expect(b.ejected).toBe(true);
    // Neither worker alone has this p99: the fast one would say 1 ms, the slow one 1 s for every percentile.
    expect(b.p50Ms).toBe(1);
    expect(b.p99Ms).toBeGreaterThan(990);
    expect(Math.round(mergeStats(primary, [share(slow, 0)])[0]!.backends[0]!.p99Ms)).toBe(0); // the window was taken
  });
});
