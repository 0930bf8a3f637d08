import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { planRebalance } from './rebalance-plan';

const even = (...streams: number[]) => streams.map((s) => ({ weight: 1, streams: s }));

describe('planRebalance', () => {
  it('3 -> 6 backends with 100 streams each on the first three: 50 from each of them, no more', () => {
    expect(planRebalance({ backends: even(100, 100, 100, 0, 0, 0), tolerancePercent: 20, budget: 1000, pending: 0 })).toEqual([50, 50, 50, 0, 0, 0]);
  });

  it('never more than the budget, spread over the over-loaded backends', () => {
    expect(planRebalance({ backends: even(100, 100, 100, 0, 0, 0), tolerancePercent: 20, budget: 10, pending: 0 })).toEqual([4, 3, 3, 0, 0, 0]);
  });

  it('within tolerance: nothing', () => {
    expect(planRebalance({ backends: even(55, 50, 45), tolerancePercent: 20, budget: 100, pending: 0 })).toEqual([0, 0, 0]);
    expect(planRebalance({ backends: even(0, 0), tolerancePercent: 20, budget: 100, pending: 0 })).toEqual([0, 0]);
    expect(planRebalance({ backends: even(300), tolerancePercent: 20, budget: 100, pending: 0 })).toEqual([0]);
  });

  it('by weight: 3:1 weights carrying 50:50 give 25 back from the light one', () => {
    expect(planRebalance({ backends: [{ weight: 3, streams: 50 }, { weight: 1, streams: 50 }], tolerancePercent: 10, budget: 100, pending: 0 })).toEqual([0, 25]);
  });

  it('streams ended a moment ago still count: the next round does not end more than needed', () => {
    // Round 1 ended 90 (30 each); clients have re-opened 30 of them on the new backends so far.
    expect(planRebalance({ backends: even(70, 70, 70, 10, 10, 10), tolerancePercent: 20, budget: 1000, pending: 60 })).toEqual([20, 20, 20, 0, 0, 0]);
  });

  it('fast-check: ends at most the budget and at most each backend\'s excess over its share, and brings every backend to within one stream of its share', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ weight: fc.integer({ min: 1, max: 100 }), streams: fc.integer({ min: 0, max: 500 }) }), { minLength: 1, maxLength: 12 }), fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 1, max: 100 }), (backends, budget, tol) => {
        const ends = planRebalance({ backends, tolerancePercent: tol, budget, pending: 0 });
        const total = backends.reduce((a, b) => a + b.streams, 0);
        const weights = backends.reduce((a, b) => a + b.weight, 0);
        expect(ends.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(budget);
        ends.forEach((n, i) => {
          const share = (total * backends[i]!.weight) / weights;
          expect(n).toBeGreaterThanOrEqual(0);
          expect(backends[i]!.streams - n).toBeGreaterThanOrEqual(Math.min(backends[i]!.streams, Math.ceil(share)));
        });
      }),
      { numRuns: 500 },
    );
  });
});
