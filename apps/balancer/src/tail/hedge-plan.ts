/**
 * The hedging decision of gRPC A6 for a call whose hedge delay passed without response headers:
 * send a hedge to `candidate`, or not, and why. No hedge while the whole pool is slow (overload:
 * a second attempt only queues), nor unless the backend waited on is stuck (hedge-gate.ts).
 * Pure: the call's attempts, the loads and the clock are given; the retry budget is the caller's
 * to draw from once this says "send" (proxy/proxied-call.ts carries the plan out), as with
 * retry-plan.ts.
 */
import type { HedgingRule } from './call-policy';
import { hedgeVerdict, type HedgeLoad, type HedgeVerdict } from './hedge-gate';

/** Why a hedge that was due is not sent, when it is worth counting (switchboard_hedges_skipped_total's reason). */
export type HedgeSkip = 'pool_slow' | Exclude<HedgeVerdict, 'send'>;

export type HedgePlan<B extends HedgeLoad = HedgeLoad> = { kind: 'send'; to: B } | { kind: 'skip'; why: 'attempts spent' | 'no other backend' | HedgeSkip };

export interface HedgeFacts<B extends HedgeLoad = HedgeLoad> {
  rule: HedgingRule;
  /** Attempts made under the policy so far (the first included). */
  attempts: number;
  /** The least loaded backend not tried yet, if any. */
  candidate: B | undefined;
  /** The backend of the attempt in flight (undefined: none is). */
  waitingOn: HedgeLoad | undefined;
  /** In place of an attempt that failed with a non-fatal status: not gated, it adds no load. */
  replacing: boolean;
  /** The pool's median time to headers is past the hedge delay: overload (CallPolicy.poolSlow). */
  poolSlow: boolean;
  /** How long the call has waited, and now (ms). */
  waitedMs: number;
  now: number;
}

export function planHedge<B extends HedgeLoad>(f: HedgeFacts<B>): HedgePlan<B> {
  if (f.attempts >= f.rule.maxAttempts) return { kind: 'skip', why: 'attempts spent' };
  const to = f.candidate;
  if (to === undefined) return { kind: 'skip', why: 'no other backend' };
  if (f.replacing || f.waitingOn === undefined) return { kind: 'send', to };
  if (f.poolSlow) return { kind: 'skip', why: 'pool_slow' };
  const verdict = hedgeVerdict(to, f.waitingOn, f.waitedMs, f.now);
  return verdict === 'send' ? { kind: 'send', to } : { kind: 'skip', why: verdict };
}
