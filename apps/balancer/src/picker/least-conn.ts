/**
 * least_conn: the endpoint with the fewest active streams per unit of weight, the way NGINX's
 * least_conn compares `conns / weight` (cross-multiplied, so no float division). Ties go to
 * smooth weighted round robin among the tied endpoints, as NGINX does: at low concurrency every
 * count is 0 and every pick is a tie, so weights 19:1 must still give 19:1 (a random tie-break
 * gave 203/197 over 400 sequential calls). A burst arriving at an idle pool is spread by weight
 * too, instead of all landing on the first backend.
 *
 * A full scan is O(n) per call; pools have tens of backends, where that is cheaper than keeping
 * a heap in step with every stream start and end. p2c is the O(1) choice for very large pools.
 */
import type { EndpointLoad, Picker, Random } from './picker';

/**
 * The least loaded endpoint; on a tie, the tied endpoint with the highest smooth-WRR score in
 * `scores` (updated: each tied endpoint gains its weight, the winner loses the tied total).
 * Without `scores`, ties are broken at random (reservoir sampling), equally likely each.
 */
export function pickLeastConn<E extends EndpointLoad>(endpoints: readonly E[], random: Random, scores?: Float64Array): E | undefined {
  let best = -1;
  let ties = 0;
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[i]!;
    if (best < 0) {
      best = i;
      ties = 1;
      continue;
    }
    const b = endpoints[best]!;
    const lhs = e.activeStreams * b.weight;
    const rhs = b.activeStreams * e.weight;
    if (lhs < rhs) {
      best = i;
      ties = 1;
    } else if (lhs === rhs) {
      ties++;
      if (scores === undefined && random() * ties < 1) best = i;
    }
  }
  if (best < 0 || ties === 1 || scores === undefined) return best < 0 ? undefined : endpoints[best];
  // Smooth weighted round robin among the endpoints tied with the least loaded one.
  const least = endpoints[best]!;
  let total = 0;
  let winner = -1;
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[i]!;
    if (e.activeStreams * least.weight !== least.activeStreams * e.weight) continue;
    scores[i]! += e.weight;
    total += e.weight;
    if (winner < 0 || scores[i]! > scores[winner]!) winner = i;
  }
  scores[winner]! -= total;
  return endpoints[winner];
}

export function leastConnPicker<E extends EndpointLoad>(endpoints: readonly E[]): Picker<E> {
  const scores = new Float64Array(endpoints.length);
  return { pick: (random) => pickLeastConn(endpoints, random, scores) };
}
