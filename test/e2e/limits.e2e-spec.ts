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
    const lb = await startBalancer(poolConfig(backends.map((b) => b.address), { maxStreamsPerBackend: 2, queueTimeoutMs: 0, algorithm: 'round_robin' }));
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

describe('the wait queue of maxStreamsPerBackend', () => {
  it('holds calls while every backend is full, hands freed slots out in order, and bounds the wait and the length', async () => {
    const backend = await startEchoBackend({ name: 'q' });
    const lb = await startBalancer(poolConfig([backend.address], { maxStreamsPerBackend: 2, maxQueuedCalls: 2, queueTimeoutMs: 1500 }));
    const client = echoClient(lb.listen);
    try {
      const first = [unary(client, { delayMs: 300 }), unary(client, { delayMs: 300 })];
      await waitFor('two calls at the backend', () => backend.stats.active === 2);
      // Two more wait in the queue; a fifth finds the queue full and fails at once.
      const queued = [unary(client, {}), unary(client, {})];
      await new Promise((r) => setTimeout(r, 50));
      const rejected = await unary(client, {});
      expect(rejected.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(rejected.error?.details).toContain('2 calls are already waiting');
      // When the first two end, the queued two run on their slots.
      expect((await Promise.all([...first, ...queued])).map((r) => r.error?.code ?? 0)).toEqual([0, 0, 0, 0]);
      // A call queued behind two that never end gives up after queueTimeoutMs.
      const hanging = [client.ServerStream({ hang: true }), client.ServerStream({ hang: true })];
      hanging.forEach((h) => h.on('error', () => {}));
      await waitFor('two hanging', () => backend.stats.active === 2);
      const waited = await unary(client, {});
      expect(waited.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(waited.error?.details).toContain('waited 1500 ms');
      hanging.forEach((h) => h.cancel());
      await waitFor('idle', async () => (await lb.state()).pools[0]!.backends[0]!.activeStreams === 0);
    } finally {
      client.close();
      await lb.stop();
      await backend.stop();
    }
  });
});

describe('slow start', () => {
  it('ramps a backend that joins a running pool from 10% of its weight instead of flooding it', async () => {
    const [warm, cold] = await Promise.all(['warm', 'cold'].map((name) => startEchoBackend({ name })));
    const lb = await startBalancer(poolConfig([warm!.address], { slowStartMs: 8000 }));
    const client = echoClient(lb.listen);
    const held: grpc.ClientReadableStream<unknown>[] = [];
    const hold = (n: number): void => {
      for (let i = 0; i < n; i++) {
        const c = client.ServerStream({ hang: true });
        c.on('error', () => {});
        held.push(c);
      }
    };
    try {
      hold(20);
      await waitFor('20 streams on warm', () => warm!.stats.active === 20);
      await lb.reload(poolConfig([warm!.address, cold!.address], { slowStartMs: 8000 }));
      const joined = (await lb.state()).pools[0]!.backends[1]!;
      expect(joined.effectiveWeight).toBeLessThan(0.3);
      // Without slow start least_conn would send all ten to the idle newcomer (0 < 20 streams);
      // at 10-30% weight it takes only while its streams stay under that share of warm's 20.
      hold(10);
      await waitFor('30 streams', () => warm!.stats.active + cold!.stats.active === 30);
      expect(cold!.stats.active).toBeLessThanOrEqual(5);
      await waitFor('full weight', async () => (await lb.state()).pools[0]!.backends[1]!.effectiveWeight === 1, 15_000);
    } finally {
      held.forEach((c) => c.cancel());
      client.close();
      await lb.stop();
      await Promise.all([warm!.stop(), cold!.stop()]);
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
