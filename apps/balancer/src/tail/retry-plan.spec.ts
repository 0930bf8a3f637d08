import { describe, expect, it } from '@jest/globals';
import type { RetryRule } from './call-policy';
import { planRetry, type RetryFacts } from './retry-plan';

const UNAVAILABLE = 14;
const INTERNAL = 13;
const rule: RetryRule = { maxAttempts: 3, initialBackoffMs: 100, maxBackoffMs: 1000, multiplier: 2, codes: 1 << UNAVAILABLE };
const facts = (over: Partial<RetryFacts> = {}): RetryFacts => ({ rule, code: UNAVAILABLE, pushbackHeader: undefined, attempts: 1, backoffs: 0, elapsedMs: 0, timeoutMs: undefined, random: () => 0.5, ...over });

describe('planRetry (scripted clock and random source)', () => {
  it('retries a retryable status after a jittered exponential backoff', () => {
    expect(planRetry(facts())).toEqual({ kind: 'retry', delayMs: 50, backoffRestarts: false }); // 0.5 x 100
    expect(planRetry(facts({ backoffs: 1 }))).toEqual({ kind: 'retry', delayMs: 100, backoffRestarts: false }); // 0.5 x 200
    expect(planRetry(facts({ backoffs: 9, random: () => 0.999 })).kind).toBe('retry');
    expect((planRetry(facts({ backoffs: 9, random: () => 0.999 })) as { delayMs: number }).delayMs).toBeLessThan(1000); // capped by maxBackoffMs
  });

  it('answers with the status when it is not retryable or the attempts are spent', () => {
    expect(planRetry(facts({ code: INTERNAL }))).toEqual({ kind: 'answer', why: 'status not retryable' });
    expect(planRetry(facts({ attempts: 3 }))).toEqual({ kind: 'answer', why: 'attempts spent' });
  });

  it('obeys a pushback (and restarts the backoff), stops on a negative one, refuses one too long or past the deadline', () => {
    expect(planRetry(facts({ pushbackHeader: '250' }))).toEqual({ kind: 'retry', delayMs: 250, backoffRestarts: true });
    expect(planRetry(facts({ pushbackHeader: '-1' }))).toEqual({ kind: 'answer', why: 'backend said not to retry' });
    expect(planRetry(facts({ pushbackHeader: 'soon' }))).toEqual({ kind: 'answer', why: 'backend said not to retry' });
    expect(planRetry(facts({ pushbackHeader: '999999999' }))).toEqual({ kind: 'answer', why: 'pushback too long' });
    expect(planRetry(facts({ pushbackHeader: '500', elapsedMs: 1600, timeoutMs: 2000 }))).toEqual({ kind: 'answer', why: 'pushback past the deadline' });
    expect(planRetry(facts({ pushbackHeader: '300', elapsedMs: 1600, timeoutMs: 2000 })).kind).toBe('retry');
  });
});
