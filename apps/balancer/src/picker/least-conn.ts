/**
 * least_conn: the endpoint with the fewest active streams per unit of weight, the way NGINX's
 * least_conn compares `conns / weight` (cross-multiplied, so no float division). Ties are broken
 * by reservoir sampling (each tied endpoint wins with equal probability, as in Envoy's full-scan
 * least_request), so a burst arriving at an idle pool does not all land on the first backend.
 *
 * A full scan is O(n) per call; pools have tens of backends, where that is cheaper than keeping
 * a heap in step with every stream start and end. p2c is the O(1) choice for very large pools.
 */
import type { EndpointLoad, Picker, Random } from './picker';

export function pickLeastConn<E extends EndpointLoad>(endpoints: readonly E[], random: Random): E | undefined {
  let best: E | undefined;
  let ties = 0;
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[i]!;
    if (best === undefined) {
      best = e;
      ties = 1;
      continue;
    }
    const lhs = e.activeStreams * best.weight;
    const rhs = best.activeStreams * e.weight;
    if (lhs < rhs) {
      best = e;
      ties = 1;
    } else if (lhs === rhs && random() * ++ties < 1) {
      best = e;
    }
  }
  return best;
}

export function leastConnPicker<E extends EndpointLoad>(endpoints: readonly E[]): Picker<E> {
  return { pick: (random) => pickLeastConn(endpoints, random) };
}
