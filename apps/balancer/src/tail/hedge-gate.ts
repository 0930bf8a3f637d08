/**
 * Whether a hedge is worth sending (issue 26). A hedge helps only when another backend can answer
 * sooner than the attempt that is waiting; when the whole pool is slow, the pool is overloaded and
 * a second attempt only adds load: every call gets slower, more calls pass the delay, more hedges
 * go out, and the pool tips into an outage (seen: p50 756 ms and 1.7% DEADLINE_EXCEEDED where
 * no hedging had none). So, from what the balancer already knows ("The Tail at Scale": hedge to a
 * replica that is not itself loaded; Prequal: pick by load and latency, not by the delay alone):
 *
 *  - the candidate's latency estimate (peak EWMA of its time to response headers, decayed to
 *    now) must be below the time the call has already waited: a candidate that is itself slow
 *    cannot beat the attempt in flight. When every backend is slow, no candidate passes: no hedge;
 *  - the candidate must have spare capacity: no more active streams than the pool's mean. A
 *    backend busier than its peers would queue the hedge behind its own calls.
 *
 * A candidate with no estimate yet (cold) passes the first test. Pure: loads and clock are given.
 */
export interface HedgeLoad {
  readonly activeStreams: number;
  /** Peak EWMA of the time to response headers in ms at `now`; NaN when nothing was measured. */
  latencyMs(now: number): number;
}

export type HedgeVerdict = 'send' | 'candidate_slow' | 'candidate_busy';

export function hedgeVerdict(candidate: HedgeLoad, pool: readonly HedgeLoad[], waitedMs: number, now: number): HedgeVerdict {
  const estimate = candidate.latencyMs(now);
  if (!Number.isNaN(estimate) && estimate >= waitedMs) return 'candidate_slow';
  if (pool.length > 0) {
    let total = 0;
    for (let i = 0; i < pool.length; i++) total += pool[i]!.activeStreams;
    // Cross-multiplied: active <= total / n.
    if (candidate.activeStreams * pool.length > total) return 'candidate_busy';
  }
  return 'send';
}
