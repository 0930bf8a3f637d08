import { describe, expect, it } from '@jest/globals';
import { hedgeVerdict, type HedgeLoad } from './hedge-gate';

const load = (activeStreams: number, latency: number): HedgeLoad => ({ activeStreams, latencyMs: () => latency });

describe('hedgeVerdict', () => {
  it('one backend frozen, the others quick and less loaded: hedge', () => {
    const frozen = load(12, 9);
    const quick = load(2, 11);
    expect(hedgeVerdict(quick, [frozen, quick, load(3, 10)], 50, 0)).toBe('send');
  });

  it('the whole pool slow (overload): no hedge, whoever the candidate is', () => {
    const pool = [load(30, 400), load(28, 380), load(29, 390)];
    for (const c of pool) expect(hedgeVerdict(c, pool, 50, 0)).toBe('candidate_slow');
    // Past the slowest estimate a hedge may go again (the attempt has waited longer than anyone answers).
    expect(hedgeVerdict(pool[1]!, pool, 500, 0)).toBe('send');
  });

  it('a candidate busier than the pool mean: no hedge', () => {
    const pool = [load(1, 5), load(9, 5), load(2, 5)];
    expect(hedgeVerdict(pool[1]!, pool, 50, 0)).toBe('candidate_busy');
    expect(hedgeVerdict(pool[0]!, pool, 50, 0)).toBe('send');
  });

  it('a cold candidate (no estimate) is not held back by latency', () => {
    const cold = load(0, Number.NaN);
    expect(hedgeVerdict(cold, [cold, load(4, 20)], 50, 0)).toBe('send');
  });

  it('reads the estimate at the given clock', () => {
    const seen: number[] = [];
    const c: HedgeLoad = { activeStreams: 0, latencyMs: (now) => (seen.push(now), 10) };
    hedgeVerdict(c, [c], 50, 1234);
    expect(seen).toEqual([1234]);
  });
});
