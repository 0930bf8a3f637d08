import { describe, expect, it } from '@jest/globals';
import * as fc from 'fast-check';
import { snapshotParts } from './snapshot-parts';

describe('snapshot parts', () => {
  it('put back together through UTF-8 give the JSON sent, whatever its characters; none is over the size', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.integer({ min: 2, max: 40 }), (text, size) => {
        const json = JSON.stringify({ labels: { note: text } });
        const parts = snapshotParts(json, size);
        expect(parts.every((p) => p.length <= size && p.length > 0)).toBe(true);
        const received = parts.map((p) => Buffer.from(p, 'utf8').toString('utf8')).join('');
        expect(received).toBe(json);
      }),
      { numRuns: 500 },
    );
  });

  it('does not cut an emoji in two at a part boundary', () => {
    const json = `{"a":"x😀"}`; // the emoji's halves at code units 6 and 7
    expect(snapshotParts(json, 7)).toEqual(['{"a":"x', '😀"}']);
  });
});
