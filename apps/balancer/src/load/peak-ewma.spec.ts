import { describe, expect, it } from '@jest/globals';
import { PeakEwma } from './peak-ewma';

describe('PeakEwma', () => {
  it('is NaN before the first sample, then jumps to a peak at once', () => {
    const e = new PeakEwma(1000);
    expect(e.get(0)).toBeNaN();
    e.observe(100, 0);
    e.observe(400, 1);
    expect(e.get(1)).toBeCloseTo(400, 0);
    e.observe(10_000, 2);
    expect(e.get(2)).toBeCloseTo(400, 0); // at most 4x per 100 ms
  });

  it('rises at most 4x per sample, so answers held up by one pause do not shun a node for long', () => {
    const e = new PeakEwma(500);
    for (let t = 0; t < 1000; t += 4) e.observe(12, t);
    for (let i = 0; i < 20; i++) e.observe(1500, 2500 + i); // a 1.5 s pause ends: its calls answer together
    expect(e.get(2520)).toBeLessThanOrEqual(1500);
    // Re-admitted within about a second: back under 4x its old latency (a peer with 3 calls in flight costs about that).
    expect(e.get(2520 + 1000)).toBeLessThan(4 * 12 + 1);
    // A node that really turned slow gets there within a few answers.
    const slow = new PeakEwma(500);
    slow.observe(10, 0);
    for (let i = 1; i <= 4; i++) slow.observe(1000, i * 101);
    expect(slow.get(404)).toBeCloseTo(1000, 0);
  });

  it('blends lower samples in and decays towards zero with time', () => {
    const e = new PeakEwma(1000);
    e.observe(100, 0);
    e.observe(0, 1000); // weight e^-1 on the old value
    expect(e.get(1000)).toBeCloseTo(100 * Math.exp(-1));
    expect(e.get(2000)).toBeCloseTo(100 * Math.exp(-2));
  });
});
