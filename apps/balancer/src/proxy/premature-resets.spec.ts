import type { Http2Session } from 'node:http2';
import { constants } from 'node:http2';
import { describe, expect, it } from '@jest/globals';
import { PrematureResets } from './premature-resets';

/** The two things PrematureResets reads of a session, and what it does to one. */
function session(opened: () => number): Http2Session & { destroyedWith?: number } {
  const s = {
    destroyed: false,
    destroyedWith: undefined as number | undefined,
    get state() {
      return { lastProcStreamID: opened() * 2 - 1 };
    },
    destroy(_err: Error, code: number) {
      s.destroyed = true;
      s.destroyedWith = code;
    },
  };
  return s as unknown as Http2Session & { destroyedWith?: number };
}

describe('PrematureResets', () => {
  it('sends ENHANCE_YOUR_CALM once `limit` early resets are half or more of the streams', () => {
    const calmed: number[] = [];
    const guard = new PrematureResets(100, (_s, resets) => calmed.push(resets));
    let opened = 0;
    const s = session(() => opened);
    for (let i = 0; i < 99; i++) {
      opened++;
      guard.record(s);
    }
    expect(s.destroyed).toBe(false);
    expect(guard.suspect(s)).toBe(true);
    opened++;
    guard.record(s);
    expect(s.destroyedWith).toBe(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    expect(calmed).toEqual([100]);
  });

  it('leaves a client alone whose early resets stay under half of its streams', () => {
    const guard = new PrematureResets(100, () => {});
    let opened = 0;
    const s = session(() => opened);
    for (let i = 0; i < 1000; i++) {
      opened += 3; // two calls answered for every one cancelled early
      guard.record(s);
    }
    expect(s.destroyed).toBe(false);
  });

  it('with limit 0 only marks suspects', () => {
    const guard = new PrematureResets(0, () => {});
    const s = session(() => 1);
    for (let i = 0; i < 10_000; i++) guard.record(s);
    expect(s.destroyed).toBe(false);
    expect(guard.suspect(s)).toBe(true);
  });
});
