/**
 * No call waits on something that has failed (issue 28). Every place a call can wait in the
 * balancer is bounded by the call's own deadline and by a failure of what it waits for:
 *  - a connection being opened to a backend that accepts TCP and never speaks HTTP/2;
 *  - the pool's queue (maxStreamsPerBackend), when its backend dies;
 *  - a retry backoff longer than the deadline;
 *  - a flow-control window: a server stream to a client that stopped reading.
 * Each check waits for its outcome (no fixed sleep and tight bound) and then asserts an upper
 * bound far below what an unbounded wait would give.
 */
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from '@jest/globals';
import { startEchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { unary } from '../support/grpc';
import { killAll, poolConfig, spawnBackend, startBalancer, waitFor } from '../support/processes';

afterAll(() => killAll());

const idle = async (lb: { state(): Promise<{ pools: { backends: { activeStreams: number }[] }[] }> }): Promise<void> => {
  await waitFor('every count back to 0', async () => (await lb.state()).pools.every((p) => p.backends.every((b) => b.activeStreams === 0)));
};

describe('no call waits on something that has failed', () => {
  it('a connection being opened to a backend that never speaks: the deadline ends the call, and without one the connect timeout does', async () => {
    // Accepts TCP, reads, never answers: no SETTINGS, no FIN.
    const held: net.Socket[] = [];
    const silent = net.createServer((s) => {
      held.push(s);
      s.on('error', () => {});
      s.resume();
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const address = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const lb = await startBalancer(poolConfig([address]), ['--workers', '1']);
    const client = echoClient(lb.listen);
    try {
      let t0 = Date.now();
      const r = await unary(client, {}, undefined, { deadline: Date.now() + 300 });
      expect(r.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(Date.now() - t0).toBeLessThan(3000);
      t0 = Date.now();
      const noDeadline = await unary(client, {});
      expect(noDeadline.error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(noDeadline.error?.details).toMatch(/connect timed out|unreachable/);
      expect(Date.now() - t0).toBeLessThan(15_000); // the 5 s connect timeout, not forever
      await idle(lb);
    } finally {
      client.close();
      await lb.stop();
      held.forEach((s) => s.destroy());
      silent.close();
    }
  }, 60_000);

  it('the pool queue: a queued call ends at its deadline, and at once with UNAVAILABLE when the backend it waits for dies', async () => {
    const backend = await spawnBackend('queue-target');
    const lb = await startBalancer(poolConfig([backend.address], { maxStreamsPerBackend: 1, queueTimeoutMs: 60_000 }), ['--workers', '1']);
    const client = echoClient(lb.listen);
    const hanging = client.ServerStream({ hang: true });
    hanging.on('error', () => {});
    try {
      await waitFor('the slot taken', async () => (await lb.state()).pools[0]!.backends[0]!.activeStreams === 1);
      let t0 = Date.now();
      const withDeadline = await unary(client, {}, undefined, { deadline: Date.now() + 400 });
      expect(withDeadline.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(Date.now() - t0).toBeLessThan(5000); // not the queue's 60 s
      const queued = unary(client, {});
      await waitFor('a call queued', async () => ((await lb.state()).pools[0] as unknown as { queued: number }).queued === 1);
      t0 = Date.now();
      await backend.kill('SIGKILL');
      const r = await queued;
      expect(r.error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(Date.now() - t0).toBeLessThan(10_000); // not the queue's 60 s
      await idle(lb);
    } finally {
      hanging.cancel();
      client.close();
      await lb.stop();
    }
  }, 60_000);

  it('a retry backoff longer than the deadline: the deadline ends the call', async () => {
    const failing = await startEchoBackend({ name: 'always-unavailable', failWith: grpc.status.UNAVAILABLE });
    const lb = await startBalancer(
      poolConfig([failing.address], {
        retry: { maxAttempts: 5, initialBackoffMs: 20_000, maxBackoffMs: 20_000, backoffMultiplier: 1, retryableStatusCodes: ['UNAVAILABLE'] },
        retryBudget: { percent: 100, minPerSecond: 100 },
      }),
      ['--workers', '1'],
    );
    const client = echoClient(lb.listen);
    try {
      // A backoff is random in [0, 20 s]: a few calls make one land past the deadline for sure.
      for (let i = 0; i < 3; i++) {
        const t0 = Date.now();
        const r = await unary(client, {}, undefined, { deadline: Date.now() + 500 });
        expect([grpc.status.DEADLINE_EXCEEDED, grpc.status.UNAVAILABLE]).toContain(r.error?.code);
        expect(Date.now() - t0).toBeLessThan(5000);
      }
      await idle(lb);
    } finally {
      client.close();
      await lb.stop();
      await failing.stop();
    }
  }, 60_000);

  it('a flow-control window: a server stream to a client that stopped reading ends at its deadline, and when its backend dies', async () => {
    const backend = await spawnBackend('firehose');
    const lb = await startBalancer(poolConfig([backend.address]), ['--workers', '1']);
    const client = echoClient(lb.listen);
    try {
      // 200 MB the client never reads: the windows fill, and the call waits on them.
      let t0 = Date.now();
      const paused = client.ServerStream({ responseCount: 2000, responseSize: 100_000 }, new grpc.Metadata(), { deadline: Date.now() + 1500 });
      paused.pause();
      const status = await new Promise<grpc.StatusObject>((resolve) => {
        paused.on('status', resolve);
        paused.on('error', () => {});
      });
      expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(Date.now() - t0).toBeLessThan(6000);
      // Without a deadline: the backend dies while the call waits on the window.
      const stuck = client.ServerStream({ responseCount: 2000, responseSize: 100_000 });
      stuck.pause();
      const ended = new Promise<grpc.StatusObject>((resolve) => {
        stuck.on('status', resolve);
        stuck.on('error', () => {});
      });
      await waitFor('the stream under way', async () => (await lb.state()).pools[0]!.backends[0]!.activeStreams === 1);
      t0 = Date.now();
      await backend.kill('SIGKILL');
      stuck.resume(); // it reads again: what was relayed comes, then the status
      const s = await ended;
      expect(s.code).toBe(grpc.status.UNAVAILABLE);
      expect(Date.now() - t0).toBeLessThan(10_000);
      await idle(lb);
    } finally {
      client.close();
      await lb.stop();
    }
  }, 60_000);

  it('a pool\'s defaultTimeoutMs is the deadline of calls that carry none; a call with its own keeps it', async () => {
    const backend = await startEchoBackend({ name: 'slow' });
    const lb = await startBalancer(poolConfig([backend.address], { defaultTimeoutMs: 300 }), ['--workers', '1']);
    const client = echoClient(lb.listen);
    try {
      let t0 = Date.now();
      const r = await unary(client, { delayMs: 5000 });
      expect(r.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(r.error?.details).toContain('deadline of 300 ms');
      expect(Date.now() - t0).toBeLessThan(3000);
      t0 = Date.now();
      const own = await unary(client, { delayMs: 600 }, undefined, { deadline: Date.now() + 3000 });
      expect(own.error).toBeUndefined();
      await idle(lb);
    } finally {
      client.close();
      await lb.stop();
      await backend.stop();
    }
  }, 60_000);
});

