/**
 * Whether a hedge is worth sending (issue 26). A hedge helps only when another backend can answer
 * sooner than the attempt that is waiting, and it tips a pool over when the pool has no capacity
 * to spare: every call gets slower, more calls pass the delay, more hedges go out, and the pool
 * collapses into an outage (seen: p50 756 ms and 1.7% DEADLINE_EXCEEDED where no hedging had
 * none). What tells a stuck backend from an overloaded pool is the load the balancer already
 * counts ("The Tail at Scale": hedge to a replica that is not itself loaded; Prequal: pick by
 * load, not by the delay alone):
 *
 *  - a backend that froze piles up streams while its peers keep theirs: when the hedge is due
 *    (after the delay), its count is several times the least loaded other backend's;
 *  - an overloaded pool has every backend about as loaded as the others: the least loaded other
 *    backend is nearly as busy as the one the attempt waits on, and a hedge only adds load.
 *
 * So a hedge goes only to a candidate with at most half the active streams of the busiest backend
 * an attempt of the call waits on (counting the call's own stream there, and one for the hedge).
 * A lone slow call on an idle pool (1 stream against 0) is hedged; a pool loaded alike is not.
 * Pure: the loads are given.
 */
export interface HedgeLoad {
  readonly activeStreams: number;
}

export type HedgeVerdict = 'send' | 'no_spare_capacity';

/** `waitingOn`: the active streams of the busiest backend this call's live attempts wait on. */
export function hedgeVerdict(candidate: HedgeLoad, waitingOn: number): HedgeVerdict {
  return 2 * (candidate.activeStreams + 1) <= waitingOn + 1 ? 'send' : 'no_spare_capacity';
}
