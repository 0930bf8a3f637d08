/**
 * weighted_round_robin, NGINX's smooth weighted round robin: every pick adds each endpoint's
 * weight to its running score, takes the highest score and subtracts the total weight from it.
 * Weights 5/1/1 give a a b a c a a rather than a a a a a b c: the same shares without bursts.
 */
import type { EndpointLoad, Picker } from './picker';

export function weightedRoundRobinPicker<E extends EndpointLoad>(endpoints: readonly E[]): Picker<E> {
  const current = new Float64Array(endpoints.length);
  return {
    pick(): E | undefined {
      let total = 0;
      let best = -1;
      for (let i = 0; i < endpoints.length; i++) {
        const w = endpoints[i]!.weight;
        current[i]! += w;
        total += w;
        if (best < 0 || current[i]! > current[best]!) best = i;
      }
      if (best < 0) return undefined;
      current[best]! -= total;
      return endpoints[best];
    },
  };
}
