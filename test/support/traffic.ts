/**
 * Steady traffic for hot-reload and failover tests: unary calls back to back and long-lived
 * Bidi streams that echo a message every few ms, until stopped. Bounded in time by `stop()`
 * and in count by `maxCalls`.
 */
import * as grpc from '@grpc/grpc-js';
import type { EchoClient } from './grpc';
import { unary } from './grpc';

export interface TrafficResult {
  unaryOk: number;
  unaryFailed: { code: number; details: string }[];
  streamsOk: number;
  streamsFailed: { code: number; details: string }[];
  streamMessages: number;
}

export function steadyTraffic(clients: EchoClient[], options: { streams?: number; streamMessageEveryMs?: number; maxCalls?: number } = {}): { stop(): Promise<TrafficResult>; result: TrafficResult } {
  const result: TrafficResult = { unaryOk: 0, unaryFailed: [], streamsOk: 0, streamsFailed: [], streamMessages: 0 };
  let stopping = false;
  const maxCalls = options.maxCalls ?? 200_000;
  const loops = clients.map(async (client) => {
    while (!stopping && result.unaryOk + result.unaryFailed.length < maxCalls) {
      const r = await unary(client, { payload: Buffer.from('x') });
      if (r.error) result.unaryFailed.push({ code: r.error.code, details: r.error.details });
      else result.unaryOk++;
    }
  });
  const streams = clients.flatMap((client) =>
    Array.from({ length: options.streams ?? 2 }, () =>
      new Promise<void>((resolve) => {
        const call = client.Bidi() as grpc.ClientDuplexStream<{ payload: Buffer }, { received: number }>;
        const timer = setInterval(() => {
          if (stopping) {
            clearInterval(timer);
            call.end();
          } else call.write({ payload: Buffer.from('s') });
        }, options.streamMessageEveryMs ?? 20);
        call.on('data', () => result.streamMessages++);
        call.on('error', () => {});
        call.on('status', (s: grpc.StatusObject) => {
          clearInterval(timer);
          if (s.code === grpc.status.OK) result.streamsOk++;
          else result.streamsFailed.push({ code: s.code, details: s.details });
          resolve();
        });
      }),
    ),
  );
  return {
    result,
    async stop() {
      stopping = true;
      await Promise.all([...loops, ...streams]);
      return result;
    },
  };
}
