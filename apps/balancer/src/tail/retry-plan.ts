/**
 * The retry decision of gRPC A6 for an attempt that ended with a status and no response: retry
 * (after how long) or let that status be the call's answer, and why. Pure: the call's attempts
 * so far, its clock and the random source are given; the retry budget is the caller's to draw
 * from once this says "retry" (proxy/proxied-call.ts carries the plan out).
 */
import { backoffMs, MAX_PUSHBACK_MS, pushbackMs, type RetryRule } from './call-policy';

export type RetryPlan =
  | { kind: 'retry'; delayMs: number; /** A6: after a pushback the backoff starts over. */ backoffRestarts: boolean }
  | { kind: 'answer'; why: 'status not retryable' | 'attempts spent' | 'backend said not to retry' | 'pushback too long' | 'pushback past the deadline' };

export interface RetryFacts {
  rule: RetryRule;
  /** The attempt's grpc-status. */
  code: number;
  /** The backend's grpc-retry-pushback-ms header, if it sent one. */
  pushbackHeader: string | string[] | undefined;
  /** Attempts made under the policy so far (the first included). */
  attempts: number;
  /** Backoffs taken since the last pushback (the exponent of the next one is this + 1). */
  backoffs: number;
  /** Time since the call started, and its deadline (undefined: none). */
  elapsedMs: number;
  timeoutMs: number | undefined;
  random: () => number;
}

export function planRetry(f: RetryFacts): RetryPlan {
  if (!(f.rule.codes & (1 << f.code))) return { kind: 'answer', why: 'status not retryable' };
  if (f.attempts >= f.rule.maxAttempts) return { kind: 'answer', why: 'attempts spent' };
  const pushback = pushbackMs(f.pushbackHeader);
  if (pushback === -1) return { kind: 'answer', why: 'backend said not to retry' };
  if (pushback !== undefined) {
    // A pushback past the cap, or past the call's deadline, is a "not now": the backend's status is the answer.
    if (pushback > MAX_PUSHBACK_MS) return { kind: 'answer', why: 'pushback too long' };
    if (f.timeoutMs !== undefined && f.elapsedMs + pushback >= f.timeoutMs) return { kind: 'answer', why: 'pushback past the deadline' };
    return { kind: 'retry', delayMs: pushback, backoffRestarts: true };
  }
  return { kind: 'retry', delayMs: backoffMs(f.rule, f.backoffs + 1, f.random), backoffRestarts: false };
}
