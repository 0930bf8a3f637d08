/**
 * Whether a hedge is worth sending (issue 26). A hedge helps only when another backend can answer
 * sooner than the one the call waits on, and it tips a pool over when the pool has no capacity to
 * spare: every call gets slower, more calls pass the delay, more hedges go out, and the pool
 * collapses into an outage (seen: p50 756 ms and 1.7% DEADLINE_EXCEEDED where no hedging had
 * none). Active-stream counts cannot tell the two apart under least_conn (it stops feeding a
 * frozen backend, so its count stays near its peers'), and a latency estimate cannot either
 * (under load every backend's is near the delay). Progress can:
 *
 *  - a frozen backend (a GC pause, a stuck event loop) answers nobody: the one the call waits on
 *    has gone without answering any call for at least half the time this call has waited;
 *  - an overloaded pool keeps answering, only late: the backend the call waits on answered
 *    someone a moment ago, and a hedge would just queue elsewhere. No hedge;
 *  - and the candidate must itself be answering (not silent for as long).
 *
 * ("The Tail at Scale": hedge against a replica that is stuck, not one that is busy; A6's retry
 * throttling, the retry budget, still caps what hedges cost.) Pure: loads and clock are given.
 */
export interface HedgeLoad {
  /** How long the backend has gone without answering while calls wait on it (0: none waits). */
  silentMs(now: number): number;
}

export type HedgeVerdict = 'send' | 'backend_answering' | 'candidate_silent';

/** `waitingOn`: the backend of the call's attempt in flight; `waitedMs`: how long the call has waited. */
export function hedgeVerdict(candidate: HedgeLoad, waitingOn: HedgeLoad, waitedMs: number, now: number): HedgeVerdict {
  const threshold = waitedMs / 2;
  if (waitingOn.silentMs(now) < threshold) return 'backend_answering';
  if (candidate.silentMs(now) >= threshold) return 'candidate_silent';
  return 'send';
}
