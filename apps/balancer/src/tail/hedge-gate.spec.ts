import { describe, expect, it } from '@jest/globals';
import { hedgeVerdict, type HedgeLoad } from './hedge-gate';

/** A backend that last answered at `lastAnswer` with calls waiting (or none waiting). */
const backend = (lastAnswer: number | null): HedgeLoad => ({ silentMs: (now) => (lastAnswer === null ? 0 : now - lastAnswer) });

describe('hedgeVerdict (scripted clock and loads)', () => {
  it('one backend frozen (answering nobody for as long as the call waited), a peer answering: hedge', () => {
    // The call waited 50 ms; its backend last answered 400 ms ago; the peer answered 2 ms ago.
    expect(hedgeVerdict(backend(998), backend(600), 50, 1000)).toBe('send');
  });

  it('a lone slow call on an otherwise idle pool: its backend silent since the call was sent, the other idle: hedge', () => {
    expect(hedgeVerdict(backend(null), backend(950), 50, 1000)).toBe('send');
  });

  it('whole pool slow (overload): the backend the call waits on keeps answering others: no hedge', () => {
    expect(hedgeVerdict(backend(999), backend(997), 50, 1000)).toBe('backend_answering');
    expect(hedgeVerdict(backend(999), backend(990), 400, 1000)).toBe('backend_answering');
  });

  it('a candidate that is itself silent: no hedge', () => {
    expect(hedgeVerdict(backend(900), backend(900), 50, 1000)).toBe('candidate_silent');
  });

  it('the line is half the wait', () => {
    expect(hedgeVerdict(backend(null), backend(975), 50, 1000)).toBe('send'); // silent 25 >= 25
    expect(hedgeVerdict(backend(null), backend(976), 50, 1000)).toBe('backend_answering'); // 24 < 25
  });
});
