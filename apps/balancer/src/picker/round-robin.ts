/**
 * round_robin: each endpoint in turn, ignoring load and weight. The cursor starts at a random
 * offset (drawn on the first pick) so that many balancers rebuilt at once do not all start on
 * the same backend, as grpc-js's round_robin does.
 */
import type { EndpointLoad, Picker, Random } from './picker';

export function roundRobinPicker<E extends EndpointLoad>(endpoints: readonly E[]): Picker<E> {
  let cursor = -1;
  return {
    pick(random: Random): E | undefined {
      const n = endpoints.length;
      if (n === 0) return undefined;
      cursor = cursor < 0 ? Math.floor(random() * n) : (cursor + 1) % n;
      return endpoints[cursor];
    },
  };
}
