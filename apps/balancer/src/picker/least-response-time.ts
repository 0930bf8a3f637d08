/**
 * least_response_time: Finagle's and Linkerd's peak-EWMA balancer. The cost of an endpoint is
 * its peak-EWMA latency times (active streams + 1), divided by its weight; the cheapest wins,
 * ties at random. An endpoint that has not answered yet is costed at the mean latency of those
 * that have, so a new backend is neither flooded (cost 0) nor starved (a pessimistic default).
 * The latency estimate itself lives with the endpoint (../load/peak-ewma.ts).
 */
import type { EndpointLoad, Picker, Random } from './picker';

export function pickLeastResponseTime<E extends EndpointLoad>(endpoints: readonly E[], random: Random, now: number): E | undefined {
  let known = 0;
  let sum = 0;
  for (let i = 0; i < endpoints.length; i++) {
    const l = endpoints[i]!.latencyMs(now);
    if (!Number.isNaN(l)) {
      known++;
      sum += l;
    }
  }
  const fallback = known > 0 ? sum / known : 1;
  let best: E | undefined;
  let bestCost = Infinity;
  let ties = 0;
  for (let i = 0; i < endpoints.length; i++) {
    const e = endpoints[i]!;
    const l = e.latencyMs(now);
    // Floor the latency so that idle, very fast endpoints still compare by their active streams.
    const cost = (Math.max(Number.isNaN(l) ? fallback : l, 0.001) * (e.activeStreams + 1)) / e.weight;
    if (cost < bestCost) {
      best = e;
      bestCost = cost;
      ties = 1;
    } else if (cost === bestCost && random() * ++ties < 1) {
      best = e;
    }
  }
  return best;
}

export function leastResponseTimePicker<E extends EndpointLoad>(endpoints: readonly E[]): Picker<E> {
  return { pick: (random, now) => pickLeastResponseTime(endpoints, random, now) };
}
