/**
 * How many long-lived streams to end on which backends, so that the pool's streams spread by
 * weight again (issue 23). Pure: the loads are given.
 *
 * Each available backend's share of the pool's streams is its weight over the pool's. The pool is
 * out of balance when some backend carries more than its share plus `tolerancePercent`, or less
 * than its share minus it. Then every backend above its share gives back what it has beyond it
 * (rounded up), oldest streams first, at most `budget` in all, the most loaded first. Ending
 * exactly the excess is what an even spread needs and no more: the clients re-open the ended
 * streams, and least_conn places them on the backends below their share.
 *
 * `pending` counts streams ended a moment ago whose clients have not re-opened them yet: they
 * still belong to the pool's total, or the next round would see the old backends at their share
 * of a smaller total and end more than needed.
 */
export interface BackendStreams {
  readonly weight: number;
  /** Long-lived streams on it now. */
  readonly streams: number;
}

export interface RebalanceInput {
  backends: readonly BackendStreams[];
  tolerancePercent: number;
  /** Streams that may be ended in this round (the rate limit's allowance). */
  budget: number;
  pending: number;
}

/** Streams to end per backend (same order as the input); all zero when the pool is in balance. */
export function planRebalance(input: RebalanceInput): number[] {
  const { backends } = input;
  const ends = backends.map(() => 0);
  const totalWeight = backends.reduce((a, b) => a + b.weight, 0);
  const streams = backends.reduce((a, b) => a + b.streams, 0);
  const total = streams + input.pending;
  if (backends.length < 2 || totalWeight <= 0 || total === 0 || input.budget <= 0) return ends;
  const share = backends.map((b) => (total * b.weight) / totalWeight);
  const tol = input.tolerancePercent / 100;
  const outside = backends.some((b, i) => b.streams > share[i]! * (1 + tol) || b.streams < share[i]! * (1 - tol));
  if (!outside) return ends;
  const excess = backends.map((b, i) => Math.max(0, b.streams - Math.ceil(share[i]!)));
  let budget = input.budget;
  // The most loaded (relative to its share) first.
  const order = backends.map((_, i) => i).filter((i) => excess[i]! > 0).sort((a, b) => backends[b]!.streams / share[b]! - backends[a]!.streams / share[a]!);
  // Round-robin one at a time over the over-loaded backends, so a small budget is spread fairly.
  while (budget > 0) {
    let took = false;
    for (const i of order) {
      if (budget === 0) break;
      if (ends[i]! < excess[i]!) {
        ends[i]!++;
        budget--;
        took = true;
      }
    }
    if (!took) break;
  }
  return ends;
}
