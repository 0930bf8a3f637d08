/**
 * The stall rule (load/stall.ts) and a Backend's use of it, with the clock scripted: answers
 * teach the usual time to headers, and silence while calls wait is judged against it.
 */
import { describe, expect, it } from '@jest/globals';
import { nextUsualMs, stallAfterMs, STALL_FACTOR, STALL_MIN_MS } from './stall';
import { Backend } from '../pool/backend';
import { DEFAULT_UPSTREAM_OPTIONS } from '../upstream/upstream-sessions';

describe('the usual time to headers', () => {
  it('starts at the first sample and follows later ones a sixteenth at a time', () => {
    let u = nextUsualMs(NaN, 10);
    expect(u).toBe(10);
    u = nextUsualMs(u, 26);
    expect(u).toBe(11);
  });

  it('barely moves for the burst of late answers that ends a stall', () => {
    let u = 10;
    for (let i = 0; i < 5; i++) u = nextUsualMs(u, 1500);
    // Each sample is capped at 4x the estimate: five 1.5 s answers take 10 ms to about 23 ms, not 1 s.
    expect(u).toBeLessThan(25);
  });

  it('follows a backend that really became slower within a few dozen calls', () => {
    let u = 10;
    for (let i = 0; i < 40; i++) u = nextUsualMs(u, 40);
    expect(u).toBeGreaterThan(36);
  });

  it('ignores samples that are not times', () => {
    expect(nextUsualMs(10, NaN)).toBe(10);
    expect(nextUsualMs(10, -1)).toBe(10);
  });

  it('calls a backend stalled after STALL_FACTOR times its usual time, at least STALL_MIN_MS, and never without a sample', () => {
    expect(stallAfterMs(10)).toBe(STALL_FACTOR * 10);
    expect(stallAfterMs(0.2)).toBe(STALL_MIN_MS);
    expect(stallAfterMs(NaN)).toBeNaN();
  });
});

describe('Backend.stalled', () => {
  const backend = (): Backend => new Backend('p', '127.0.0.1:1', { address: '127.0.0.1:1', weight: 1, drain: false } as never, DEFAULT_UPSTREAM_OPTIONS);

  it('is stalled only while calls wait on it and it has been silent past its threshold', () => {
    const b = backend();
    b.callStarted(0);
    expect(b.stalled(10_000)).toBe(false); // never answered: no usual time, never stalled
    b.answered(10, 10);
    b.callReleased(true);
    expect(b.stalled(1000)).toBe(false); // nothing waits on it
    b.callStarted(1000);
    b.callStarted(1001);
    expect(b.stalled(1039)).toBe(false); // 39 ms of silence, threshold 40
    expect(b.stalled(1040)).toBe(true);
    b.answered(45, 1045); // it answers: no longer silent
    expect(b.stalled(1046)).toBe(false);
    expect(b.stalled(1045 + stallAfterMs(nextUsualMs(10, 45)))).toBe(true); // the other call still waits
    b.callReleased(true);
    b.callReleased(false);
    expect(b.stalled(5000)).toBe(false);
  });
});
