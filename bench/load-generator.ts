/**
 * Open-loop and closed-loop gRPC load for the benchmark, with grpc-js clients.
 *
 * Open loop: calls are sent at a fixed arrival rate whatever the answers do, and each call's
 * latency counts from the time it was *meant* to be sent, so a stalled backend shows up in the
 * percentiles instead of silently slowing the generator down (coordinated omission).
 * Closed loop: N calls always outstanding, to find the saturation throughput.
 */
import * as hdr from 'hdr-histogram-js';
import type * as grpc from '@grpc/grpc-js';
import { echoClient } from '../test/fixtures/echo-proto';

export interface LoadResult {
  calls: number;
  errors: number;
  errorCodes: Record<string, number>;
  durationS: number;
  callsPerS: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Share of calls slower than SLOW_MS (open loop only): the calls a stall caught. */
  slowShare?: number;
}

/** A call slower than this counts as caught by a stall (the backends answer in 5 to 20 ms). */
export const SLOW_MS = 100;

type Client = grpc.Client & Record<string, any>;

function clients(address: string, n: number): Client[] {
  return Array.from({ length: n }, () => echoClient(address));
}

function summarize(h: hdr.Histogram, calls: number, errors: Record<string, number>, durationS: number): LoadResult {
  const ms = (p: number): number => Math.round(h.getValueAtPercentile(p) / 10) / 100; // µs → ms, 2 decimals
  const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
  return {
    calls,
    errors: errorCount,
    errorCodes: errors,
    durationS: Math.round(durationS * 100) / 100,
    callsPerS: Math.round(calls / durationS),
    p50Ms: ms(50),
    p90Ms: ms(90),
    p99Ms: ms(99),
    p999Ms: ms(99.9),
    maxMs: Math.round(h.maxValue / 10) / 100,
  };
}

/** Sends `rate` unary calls per second for `seconds`, spread over `connections` client connections, each with a deadline of `deadlineMs`. */
export async function openLoop(address: string, rate: number, seconds: number, connections = 4, request: object = {}, deadlineMs = 10_000): Promise<LoadResult> {
  const cs = clients(address, connections);
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const errors: Record<string, number> = {};
  const interval = 1000 / rate;
  const total = Math.round(rate * seconds);
  let sent = 0;
  let done = 0;
  let slow = 0;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const fire = (intended: number): void => {
      const client = cs[sent % cs.length]!;
      sent++;
      client.Unary(request, { deadline: new Date(Date.now() + deadlineMs) }, (err: grpc.ServiceError | null) => {
        const latencyMs = performance.now() - intended;
        h.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
        if (latencyMs > SLOW_MS) slow++;
        if (err) errors[String(err.code)] = (errors[String(err.code)] ?? 0) + 1;
        if (++done === total) resolve();
      });
    };
    const tick = (): void => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) fire(start + sent * interval);
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  const elapsed = (performance.now() - start) / 1000;
  cs.forEach((c) => c.close());
  return { ...summarize(h, total, errors, elapsed), slowShare: slow / total };
}

/** Keeps `concurrency` unary calls outstanding for `seconds`: the saturation throughput. */
export async function closedLoop(address: string, concurrency: number, seconds: number, connections = 4, request: object = {}): Promise<LoadResult> {
  const cs = clients(address, connections);
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const errors: Record<string, number> = {};
  let calls = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  const worker = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const client = cs[i % cs.length]!;
      const one = (): void => {
        const t0 = performance.now();
        if (t0 >= end) return resolve();
        client.Unary(request, (err: grpc.ServiceError | null) => {
          h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
          calls++;
          if (err) errors[String(err.code)] = (errors[String(err.code)] ?? 0) + 1;
          one();
        });
      };
      one();
    });
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  const elapsed = (performance.now() - start) / 1000;
  cs.forEach((c) => c.close());
  return summarize(h, calls, errors, elapsed);
}
