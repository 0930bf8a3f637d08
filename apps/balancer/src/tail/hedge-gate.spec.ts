import { describe, expect, it } from '@jest/globals';
import { hedgeVerdict } from './hedge-gate';

const load = (activeStreams: number) => ({ activeStreams });

describe('hedgeVerdict (scripted loads)', () => {
  it('one backend frozen: its streams pile up while the others keep theirs, so the hedge goes', () => {
    // 50 ms into a freeze at 260 calls/s to it: its 4 slots plus ~13 queued, against 3 on a peer.
    expect(hedgeVerdict(load(3), 17)).toBe('send');
  });

  it('a lone slow call on an idle pool is hedged', () => {
    expect(hedgeVerdict(load(0), 1)).toBe('send');
  });

  it('whole pool slow (overload, every backend about as loaded): no hedge', () => {
    expect(hedgeVerdict(load(18), 20)).toBe('no_spare_capacity');
    expect(hedgeVerdict(load(40), 44)).toBe('no_spare_capacity');
    expect(hedgeVerdict(load(1), 1)).toBe('no_spare_capacity');
  });

  it('the line is half the load waited on', () => {
    expect(hedgeVerdict(load(4), 9)).toBe('send'); // 10 <= 10
    expect(hedgeVerdict(load(5), 9)).toBe('no_spare_capacity'); // 12 > 10
  });
});
