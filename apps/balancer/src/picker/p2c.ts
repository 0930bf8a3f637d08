/**
 * p2c, the power of two choices (Mitzenmacher), as Envoy's least_request with choice_count 2 and
 * tower's p2c balancer: draw two distinct endpoints at random and keep the one with fewer active
 * streams per unit of weight. On a tie (every count is 0 at low concurrency) each wins in
 * proportion to its weight, so weights hold at any concurrency. O(1) per call, and it avoids the
 * herd behaviour of a full scan when many proxies share stale views of the same backends.
 */
import type { EndpointLoad, Picker, Random } from './picker';

export function pickP2c<E extends EndpointLoad>(endpoints: readonly E[], random: Random): E | undefined {
  const n = endpoints.length;
  if (n <= 1) return endpoints[0];
  const i = Math.floor(random() * n);
  // A second index drawn from the other n - 1 slots, so the two are always distinct.
  let j = Math.floor(random() * (n - 1));
  if (j >= i) j++;
  const a = endpoints[i]!;
  const b = endpoints[j]!;
  const lhs = b.activeStreams * a.weight;
  const rhs = a.activeStreams * b.weight;
  if (lhs !== rhs) return lhs < rhs ? b : a;
  return random() * (a.weight + b.weight) < a.weight ? a : b;
}

export function p2cPicker<E extends EndpointLoad>(endpoints: readonly E[]): Picker<E> {
  return { pick: (random) => pickP2c(endpoints, random) };
}
