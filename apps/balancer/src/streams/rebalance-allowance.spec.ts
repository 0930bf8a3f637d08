import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { rebalanceAllowance } from './rebalance-allowance';

/** Rounds of `roundMs` in which every stream the allowance permits is ended: how many each round. */
function endsPerRound(perSecond: number, roundMs: number, rounds: number, idleFirst: number): number[] {
  let left = 0;
  for (let i = 0; i < idleFirst; i++) left = rebalanceAllowance(left, perSecond, roundMs); // saving up, nothing to end
  const ends: number[] = [];
  for (let i = 0; i < rounds; i++) {
    left = rebalanceAllowance(left, perSecond, roundMs);
    const n = Math.floor(left);
    left -= n;
    ends.push(n);
  }
  return ends;
}

describe('rebalanceAllowance', () => {
  it('20 a second in quarter-second rounds: 5 a round, 6 at most after an idle spell', () => {
    expect(endsPerRound(20, 250, 8, 0)).toEqual([5, 5, 5, 5, 5, 5, 5, 5]);
    expect(endsPerRound(20, 250, 4, 100)).toEqual([6, 5, 5, 5]);
  });

  it('fractions carry over: 10 a second (a worker of two) ends 2, 3, 2, 3; 1 a second one every fourth round', () => {
    expect(endsPerRound(10, 250, 4, 0)).toEqual([2, 3, 2, 3]);
    expect(endsPerRound(1, 250, 8, 0)).toEqual([0, 0, 0, 1, 0, 0, 0, 1]);
  });

  it('any second ends at most perSecond + a round\'s share + 1, and the long run keeps the rate', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.constantFrom(1, 2, 3, 4), fc.integer({ min: 0, max: 50 }), (maxPerSecond, workers, idle) => {
        const perSecond = maxPerSecond / workers;
        const ends = endsPerRound(perSecond, 250, 40, idle);
        for (let i = 0; i + 4 <= ends.length; i++) {
          const second = ends.slice(i, i + 4).reduce((a, b) => a + b, 0);
          expect(second).toBeLessThanOrEqual(perSecond + perSecond / 4 + 1);
        }
        const total = ends.reduce((a, b) => a + b, 0);
        expect(Math.abs(total - perSecond * 10)).toBeLessThanOrEqual(perSecond / 4 + 1);
      }),
    );
  });
});
