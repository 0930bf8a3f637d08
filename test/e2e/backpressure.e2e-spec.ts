/**
 * Backpressure end to end: a client that stops reading must slow the backend down through
 * HTTP/2 flow control, not fill the balancer's memory.
 */
import { afterAll, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { startEchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { killAll, poolConfig, sleep, startBalancer } from '../support/processes';

afterAll(() => killAll());

const MiB = 1 << 20;

it('relays a 500 MiB server stream to a pausing client with the balancer under 200 MiB RSS', async () => {
  const backend = await startEchoBackend({ name: 'firehose' });
  // One process: the bound is on what one data-plane process buffers (each worker has its own).
  const lb = await startBalancer(poolConfig([backend.address]), ['--workers', '1']);
  const client = echoClient(lb.listen);
  const rss = async (): Promise<number> => Number(/^process_resident_memory_bytes (\d+)/m.exec(await lb.metrics())![1]);
  const samples: number[] = [await rss()];
  try {
    const call = client.ServerStream({ responseCount: 500, responseSize: MiB });
    let received = 0;
    let bytes = 0;
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    call.on('error', () => {});
    const pauses: Promise<void>[] = [];
    call.on('data', (m: { payload: Buffer }) => {
      received++;
      bytes += m.payload.length;
      if (received % 100 === 50) {
        // Stop reading for a while: the backend must stall, not the balancer's heap grow.
        call.pause();
        pauses.push(
          (async () => {
            await sleep(500);
            samples.push(await rss());
            call.resume();
          })(),
        );
      }
    });
    const s = await status;
    await Promise.all(pauses);
    samples.push(await rss());
    expect(s.code).toBe(grpc.status.OK);
    expect(received).toBe(500);
    expect(bytes).toBe(500 * MiB);
    process.stdout.write(`balancer RSS during the 500 MiB stream (MiB): ${samples.map((b) => Math.round(b / MiB)).join(', ')}\n`);
    expect(Math.max(...samples)).toBeLessThan(200 * MiB);
  } finally {
    client.close();
    await lb.stop();
    await backend.stop();
  }
}, 120_000);
