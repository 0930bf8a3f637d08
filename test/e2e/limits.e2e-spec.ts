/**
 * Pool limits and draining from the configuration file: maxStreamsPerBackend caps concurrent
 * streams per backend (RESOURCE_EXHAUSTED past it), and `drain: true` stops new calls to a
 * backend at once while its in-flight calls finish.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { startEchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { killAll, poolConfig, startBalancer, waitFor } from '../support/processes';
import { unary } from '../support/grpc';

afterAll(() => killAll());

describe('maxStreamsPerBackend', () => {
  it('caps streams per backend and answers RESOURCE_EXHAUSTED when every backend is full', async () => {
    const backends = await Promise.all(['cap1', 'cap2'].map((name) => startEchoBackend({ name })));
    const lb = await startBalancer(poolConfig(backends.map((b) => b.address), { maxStreamsPerBackend: 2, algorithm: 'round_robin' }));
    const client = echoClient(lb.listen);
    const held = Array.from({ length: 4 }, () => client.ServerStream({ hang: true }));
    held.forEach((c) => c.on('error', () => {}));
    try {
      await waitFor('4 streams held', () => backends.every((b) => b.stats.active === 2));
      const r = await unary(client, {});
      expect(r.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(r.error?.details).toBe('pool "echo": every available backend is at its limit of 2 concurrent streams');
      // Free one slot: the next call goes to the backend below its cap, whatever round robin says.
      held[0]!.cancel();
      await waitFor('a slot freed', async () => (await lb.state()).pools[0]!.backends.some((b) => b.activeStreams === 1));
      for (let i = 0; i < 3; i++) expect((await unary(client, {})).error).toBeUndefined();
    } finally {
      held.forEach((c) => c.cancel());
      client.close();
      await lb.stop();
      await Promise.all(backends.map((b) => b.stop()));
    }
  });
});

describe('drain', () => {
  it('stops new calls to a draining backend at once and lets its in-flight calls finish', async () => {
    const [a, b] = await Promise.all(['keep', 'leave'].map((name) => startEchoBackend({ name })));
    const lb = await startBalancer(poolConfig([a!.address, b!.address]));
    const client = echoClient(lb.listen);
    try {
      const slow = [unary(client, { delayMs: 600 }), unary(client, { delayMs: 600 })];
      await waitFor('one slow call each', () => a!.stats.active === 1 && b!.stats.active === 1);
      await lb.reload({
        pools: [{ name: 'echo', match: { services: ['*'] }, backends: [{ address: a!.address }, { address: b!.address, drain: true }] }],
      });
      const draining = (await lb.state()).pools[0]!.backends[1]!;
      expect(draining).toMatchObject({ draining: true, available: false, activeStreams: 1 });
      const during = await Promise.all(Array.from({ length: 10 }, () => unary(client, {})));
      expect(during.map((r) => r.response?.backend)).toEqual(Array(10).fill('keep'));
      expect((await Promise.all(slow)).map((r) => r.error?.code ?? 0)).toEqual([0, 0]);
      await waitFor('drained', async () => (await lb.state()).pools[0]!.backends[1]!.activeStreams === 0);
      expect(await lb.metrics()).toMatch(new RegExp(`switchboard_backend_draining\\{pool="echo",backend="${b!.address}"\\} 1`));
    } finally {
      client.close();
      await lb.stop();
      await Promise.all([a!.stop(), b!.stop()]);
    }
  });
});
