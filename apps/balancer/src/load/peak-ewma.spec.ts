import { describe, expect, it } from '@jest/globals';
import { PeakEwma } from './peak-ewma';

describe('PeakEwma', () => {
  it('is NaN before the first sample, then jumps to a peak at once', () => {
    const e = new PeakEwma(1000);
    expect(e.get(0)).toBeNaN();
    e.observe(10, 0);
    e.observe(400, 1);
    expect(e.get(1)).toBeCloseTo(400);
  });

  it('blends lower samples in and decays towards zero with time', () => {
    const e = new PeakEwma(1000);
    e.observe(100, 0);
    e.observe(0, 1000); // weight e^-1 on the old value
    expect(e.get(1000)).toBeCloseTo(100 * Math.exp(-1));
    expect(e.get(2000)).toBeCloseTo(100 * Math.exp(-2));
  });
});
