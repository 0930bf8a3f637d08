/**
 * Pickers, tested the way Envoy tests its load balancers: loads are set directly, the random
 * source is scripted, and the chosen endpoint is asserted; then table-driven distribution runs
 * with a seeded generator check shares within tolerances.
 */
import { describe, expect, it } from '@jest/globals';
import { createPicker } from '.';
import { pickLeastConn } from './least-conn';
import { pickLeastResponseTime } from './least-response-time';
import { pickP2c } from './p2c';
import type { EndpointLoad, Random } from './picker';

interface E extends EndpointLoad {
  name: string;
  activeStreams: number;
  latency: number;
}

const ep = (name: string, activeStreams = 0, weight = 1, latency = NaN): E => ({ name, activeStreams, weight, latency, latencyMs: () => latency });
/** Returns the scripted values in turn, then repeats the last one. */
const script = (...values: number[]): Random => {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)]!;
};
/** A small seeded PRNG (mulberry32) for repeatable distribution runs. */
const seeded = (seed: number): Random => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

describe('least_conn', () => {
  it('picks the endpoint with the fewest active streams', () => {
    const list = [ep('a', 3), ep('b', 1), ep('c', 2)];
    expect(pickLeastConn(list, script(0.99))?.name).toBe('b');
  });

  it('divides active streams by weight', () => {
    // a: 4/2 = 2, b: 3/1 = 3, c: 5/1 = 5
    expect(pickLeastConn([ep('a', 4, 2), ep('b', 3, 1), ep('c', 5, 1)], script(0.99))?.name).toBe('a');
    // a: 5/2 = 2.5 loses to b: 2/1 = 2
    expect(pickLeastConn([ep('a', 5, 2), ep('b', 2, 1)], script(0.99))?.name).toBe('b');
  });

  it('breaks ties by reservoir sampling, so every tied endpoint can win', () => {
    const list = [ep('a'), ep('b'), ep('c')];
    // The second tie replaces the first when random() * 2 < 1; the third when random() * 3 < 1.
    expect(pickLeastConn(list, script(0.9, 0.9))?.name).toBe('a');
    expect(pickLeastConn(list, script(0.1, 0.9))?.name).toBe('b');
    expect(pickLeastConn(list, script(0.9, 0.1))?.name).toBe('c');
  });

  it('returns undefined for an empty pool', () => {
    expect(pickLeastConn([], Math.random)).toBeUndefined();
  });

  it('spreads a burst on an idle pool evenly', () => {
    const list = [ep('a'), ep('b'), ep('c')];
    const random = seeded(7);
    for (let i = 0; i < 300; i++) pickLeastConn(list, random)!.activeStreams++;
    expect(list.map((e) => e.activeStreams)).toEqual([100, 100, 100]);
  });
});

describe('p2c', () => {
  it('draws two distinct endpoints and keeps the less loaded one', () => {
    const list = [ep('a', 5), ep('b', 1), ep('c', 3)];
    // i = floor(0.0 * 3) = 0 (a); j = floor(0.5 * 2) = 1, >= i so 2 (c): c has fewer streams.
    expect(pickP2c(list, script(0.0, 0.5))?.name).toBe('c');
    // i = 2 (c); j = floor(0.4 * 2) = 0 (a): c.
    expect(pickP2c(list, script(0.9, 0.4))?.name).toBe('c');
    // i = 1 (b); j = 0 (a): b.
    expect(pickP2c(list, script(0.5, 0.0))?.name).toBe('b');
  });

  it('never draws the same endpoint twice', () => {
    const list = [ep('a', 0), ep('b', 9)];
    // Both draws at 0 would be a and a; the second index skips over the first.
    expect(pickP2c(list, script(0.0, 0.0))?.name).toBe('a');
    expect(pickP2c(list, script(0.9, 0.9))?.name).toBe('a');
  });

  it('on a tie with equal weights takes either, and handles one or no endpoint', () => {
    expect(pickP2c([ep('a', 1), ep('b', 1)], script(0.6, 0.0))?.name).toBe('b');
    expect(pickP2c([ep('only', 7)], Math.random)?.name).toBe('only');
    expect(pickP2c([], Math.random)).toBeUndefined();
  });
});

describe('round_robin', () => {
  it('takes each endpoint in turn from a random start', () => {
    const picker = createPicker('round_robin', [ep('a'), ep('b'), ep('c')]);
    const random = script(0.5); // start at floor(0.5 * 3) = 1
    expect([1, 2, 3, 4, 5].map(() => picker.pick(random, 0)?.name)).toEqual(['b', 'c', 'a', 'b', 'c']);
  });
});

describe('weighted_round_robin (smooth)', () => {
  it('interleaves 5/1/1 as a a b a c a a, without bursts', () => {
    const picker = createPicker('weighted_round_robin', [ep('a', 0, 5), ep('b', 0, 1), ep('c', 0, 1)]);
    const order = Array.from({ length: 7 }, () => picker.pick(Math.random, 0)?.name).join(' ');
    expect(order).toBe('a a b a c a a');
  });
});

describe('least_response_time (peak EWMA)', () => {
  it('costs latency times (active + 1)', () => {
    // a: 10 * 1 = 10; b: 2 * 4 = 8; c: 1 * 11 = 11
    expect(pickLeastResponseTime([ep('a', 0, 1, 10), ep('b', 3, 1, 2), ep('c', 10, 1, 1)], script(0.9), 0)?.name).toBe('b');
  });

  it('costs an endpoint without samples at the mean of the others', () => {
    // mean of measured = (10 + 30) / 2 = 20: new endpoint costs 20 with no streams, a costs 10 * 3 = 30, b 30.
    expect(pickLeastResponseTime([ep('a', 2, 1, 10), ep('b', 0, 1, 30), ep('new', 0, 1, NaN)], script(0.9), 0)?.name).toBe('new');
  });
});

/** Table-driven distribution runs, each call holding its endpoint for a fixed number of picks. */
describe.each([
  { algorithm: 'least_conn', weights: [1, 1, 1], expected: [1 / 3, 1 / 3, 1 / 3], tolerance: 0.02 },
  { algorithm: 'least_conn', weights: [1, 3], expected: [0.25, 0.75], tolerance: 0.03 },
  { algorithm: 'p2c', weights: [1, 1, 1, 1], expected: [0.25, 0.25, 0.25, 0.25], tolerance: 0.03 },
  { algorithm: 'p2c', weights: [1, 3], expected: [0.25, 0.75], tolerance: 0.05 },
  { algorithm: 'round_robin', weights: [1, 5], expected: [0.5, 0.5], tolerance: 0.001 },
  { algorithm: 'weighted_round_robin', weights: [1, 2, 7], expected: [0.1, 0.2, 0.7], tolerance: 0.001 },
] as const)('$algorithm over weights $weights', ({ algorithm, weights, expected, tolerance }) => {
  it(`gives shares ${expected.map((s) => s.toFixed(2)).join('/')}`, () => {
    const list = weights.map((w, i) => ep(String(i), 0, w));
    const picker = createPicker(algorithm, list);
    const random = seeded(42);
    const counts = list.map(() => 0);
    const holding: E[] = [];
    const picks = 20_000;
    for (let i = 0; i < picks; i++) {
      const e = picker.pick(random, 0)!;
      counts[Number(e.name)]!++;
      e.activeStreams++;
      holding.push(e);
      if (holding.length > 40) holding.shift()!.activeStreams--;
    }
    counts.forEach((c, i) => expect(Math.abs(c / picks - expected[i]!)).toBeLessThanOrEqual(tolerance));
  });
});

describe('weights hold at any concurrency (issue 26)', () => {
  it('least_conn: sequential calls (every count 0, every pick a tie) split 19:1 exactly, interleaved', () => {
    const list = [ep('heavy', 0, 19), ep('light', 0, 1)];
    const picker = createPicker('least_conn', list);
    const counts = { heavy: 0, light: 0 };
    const order: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const e = picker.pick(seeded(i), 0)!;
      counts[e.name as 'heavy' | 'light']++;
      if (i < 20) order.push(e.name);
    }
    expect(counts).toEqual({ heavy: 1900, light: 100 });
    // Smooth: the light one comes once in each run of 20, not in a burst.
    expect(order.filter((n) => n === 'light')).toHaveLength(1);
  });

  it('least_conn: the least loaded still wins when counts differ; ties among the least loaded only go by weight', () => {
    const picker = createPicker('least_conn', [ep('a', 3, 1), ep('b', 0, 1), ep('c', 0, 3)]);
    const seen = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const name = picker.pick(Math.random, 0)!.name;
      seen.set(name, (seen.get(name) ?? 0) + 1);
    }
    expect(seen.get('a')).toBeUndefined();
    expect(seen.get('c')).toBe(300);
    expect(seen.get('b')).toBe(100);
  });

  it('p2c: two candidates on a tie win in proportion to their weights: 19:1 within 2% over 2,000 calls', () => {
    const list = [ep('heavy', 0, 19), ep('light', 0, 1)];
    const random = seeded(20261205);
    let heavy = 0;
    for (let i = 0; i < 2000; i++) if (pickP2c(list, random)!.name === 'heavy') heavy++;
    expect(Math.abs(heavy / 2000 - 0.95)).toBeLessThanOrEqual(0.02);
  });
});
