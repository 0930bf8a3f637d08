/**
 * Every way a call can end: the active-stream count goes back exactly to zero, cancels and
 * deadlines reach the backend, a crashing backend ends calls with a status instead of a hang,
 * and calls that never reached a backend are retried on another one.
 */
import * as http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { startEchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { killAll, poolConfig, sleep, spawnBackend, startBalancer, waitFor, type BalancerProcess } from '../support/processes';
import { collect, deadlineIn, unary, type EchoClient } from '../support/grpc';

afterAll(() => killAll());

async function allIdle(lb: BalancerProcess): Promise<number[]> {
  return waitFor(
    'every active-stream count back to 0',
    async () => {
      const counts = (await lb.state()).pools.flatMap((p) => p.backends.map((b) => b.activeStreams));
      return counts.every((c) => c === 0) && counts;
    },
    15_000,
  );
}

describe('active-stream accounting', () => {
  it('returns to 0 after 10,000 calls with random cancels, deadlines, resets and a backend killed mid-run', async () => {
    const procs = await Promise.all(['k1', 'k2', 'k3'].map((n) => spawnBackend(n)));
    const lb = await startBalancer(poolConfig(procs.map((p) => p.address)));
    const clients = Array.from({ length: 4 }, () => echoClient(lb.listen));
    const outcomes = new Map<number, number>();
    const total = 10_000;
    const concurrency = 64;
    let started = 0;
    let finished = 0;
    let killed = false;
    // A fixed seed keeps the mix of outcomes the same from run to run.
    let seed = 12345;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
    const runOne = (): Promise<void> =>
      new Promise((resolve) => {
        const i = started++;
        const client = clients[i % clients.length]!;
        const roll = random();
        const done = (code: number): void => {
          outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
          finished++;
          if (!killed && finished >= total / 2) {
            killed = true;
            void procs[0]!.kill('SIGKILL'); // crash: every stream on it is reset at once
          }
          resolve();
        };
        if (roll < 0.6) {
          // Plain unary call, some with a short server delay.
          unary(client, { delayMs: roll < 0.1 ? 5 : 0 }).then((r) => done(r.error?.code ?? 0));
        } else if (roll < 0.75) {
          // Client cancels mid-call (RST_STREAM from the client).
          const call = client.ServerStream({ hang: true });
          call.on('error', () => {});
          call.on('status', (s: grpc.StatusObject) => done(s.code));
          setTimeout(() => call.cancel(), Math.floor(random() * 20));
        } else if (roll < 0.85) {
          // Deadline passes at the balancer.
          unary(client, { hang: true }, new grpc.Metadata(), deadlineIn(5 + Math.floor(random() * 30))).then((r) => done(r.error?.code ?? 0));
        } else if (roll < 0.95) {
          // The backend ends the call with an error status after some messages.
          collect(client.ServerStream({ responseCount: 3, responseSize: 10, statusCode: grpc.status.ABORTED })).then((r) => done(r.status.code));
        } else {
          // Bidi stream the client half-closes early.
          const call = client.Bidi();
          call.on('error', () => {});
          call.on('data', () => {});
          call.on('status', (s: grpc.StatusObject) => done(s.code));
          call.write({ payload: Buffer.from('x') });
          call.end();
        }
      });
    const worker = async (): Promise<void> => {
      while (started < total) await runOne();
    };
    try {
      await Promise.all(Array.from({ length: concurrency }, worker));
      expect(finished).toBe(total);
      const counts = await allIdle(lb);
      expect(counts).toEqual([0, 0, 0]);
      // Every call got a real status; the killed backend caused some UNAVAILABLE, nothing hung.
      const known = [0, 1, 4, 10, 14];
      for (const code of outcomes.keys()) expect(known).toContain(code);
      expect(outcomes.get(0)).toBeGreaterThan(total * 0.5);
      // Calls whose deadline or cancel came before they were sent never reach the balancer.
      const state = await lb.state();
      expect(state.pools[0]!.backends.reduce((n, b) => n + b.totalCalls, 0)).toBeGreaterThan(total * 0.9);
    } finally {
      clients.forEach((c) => c.close());
      await lb.stop();
      await Promise.all(procs.map((p) => p.kill()));
    }
  }, 120_000);
});

describe('cancellation and deadlines', () => {
  let lb: BalancerProcess;
  let client: EchoClient;

  beforeAll(async () => {
    lb = await startBalancer({ pools: [] });
    client = echoClient(lb.listen);
  });

  afterAll(async () => {
    client?.close();
    await lb?.stop();
  });

  it('resets the backend stream when the client cancels', async () => {
    const backend = await startEchoBackend({ name: 'c1' });
    await lb.reload(poolConfig([backend.address]));
    const call = client.ServerStream({ hang: true });
    call.on('error', () => {});
    await waitFor('stream at backend', () => backend.stats.active === 1);
    const cancelledAt = Date.now();
    call.cancel();
    await waitFor('backend sees the cancel', () => backend.stats.cancelled === 1, 2000);
    // Reported for the record; the 100 ms target is measured in the benchmark, not asserted here.
    process.stdout.write(`cancel reached the backend after ${Date.now() - cancelledAt} ms\n`);
    expect(await allIdle(lb)).toEqual([0]);
    await backend.stop();
  });

  it('enforces grpc-timeout with DEADLINE_EXCEEDED and cancels the backend stream', async () => {
    const backend = await startEchoBackend({ name: 'd1' });
    await lb.reload(poolConfig([backend.address]));
    const r = await unary(client, { hang: true }, new grpc.Metadata(), deadlineIn(300));
    expect(r.error!.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await waitFor('backend sees the cancel', () => backend.stats.cancelled === 1, 2000);
    // The header reached the backend too, so it can give up on its own.
    const deadline = Number(backend.stats.lastDeadline);
    expect(Number.isFinite(deadline)).toBe(true);
    expect(deadline - Date.now()).toBeLessThan(1000);
    expect(await allIdle(lb)).toEqual([0]);
    await backend.stop();
  });

  it('answers DEADLINE_EXCEEDED from the balancer when a raw grpc-timeout passes mid-stream', async () => {
    const backend = await startEchoBackend({ name: 'd2' });
    await lb.reload(poolConfig([backend.address]));
    const stream = client.ServerStream({ hang: true }, new grpc.Metadata(), deadlineIn(200));
    const { status } = await collect(stream);
    expect(status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(await allIdle(lb)).toEqual([0]);
    await backend.stop();
  });
});

describe('backend failures', () => {
  it('ends in-flight calls with UNAVAILABLE naming the backend when it crashes, and moves on', async () => {
    const crashing = await spawnBackend('crash');
    const healthy = await startEchoBackend({ name: 'healthy' });
    const lb = await startBalancer(poolConfig([crashing.address, healthy.address]));
    const client = echoClient(lb.listen);
    const calls = Array.from({ length: 10 }, () => client.ServerStream({ hang: true }));
    try {
      const ended: grpc.StatusObject[] = [];
      calls.forEach((c) => void collect(c).then((r) => ended.push(r.status)));
      await waitFor('streams spread', async () => (await lb.state()).pools[0]!.backends.every((b) => b.activeStreams === 5));
      await crashing.kill('SIGKILL');
      // The five streams on the crashed backend end with a status; the other five go on.
      await waitFor('the crashed backend\'s calls to end', () => ended.length === 5);
      expect(ended.map((s) => s.code)).toEqual(Array(5).fill(grpc.status.UNAVAILABLE));
      for (const s of ended) expect(s.details).toContain(crashing.address);
      // The crashed backend's streams were released; the healthy one still holds its five.
      const state = await lb.state();
      expect(state.pools[0]!.backends[0]!.activeStreams).toBe(0);
      expect(state.pools[0]!.backends[1]!.activeStreams).toBe(5);
      // New calls all succeed: the dead backend is out of the picker while it cannot be reached.
      for (let i = 0; i < 20; i++) expect((await unary(client, {})).response?.backend).toBe('healthy');
    } finally {
      calls.forEach((c) => c.cancel());
      client.close();
      await lb.stop();
      await healthy.stop();
    }
  });

  it('retries calls that never reached a backend (connection refused) on another one', async () => {
    const healthy = await startEchoBackend({ name: 'up' });
    // 127.0.0.1:1 refuses connections. Balancer starts with both; every call must succeed.
    const lb = await startBalancer(poolConfig(['127.0.0.1:1', healthy.address], { algorithm: 'round_robin' }));
    const client = echoClient(lb.listen);
    try {
      const results = await Promise.all(Array.from({ length: 50 }, () => unary(client, { payload: Buffer.from('r') })));
      expect(results.filter((r) => r.error)).toEqual([]);
      expect(healthy.stats.calls).toBe(50);
    } finally {
      client.close();
      await lb.stop();
      await healthy.stop();
    }
  });

  it('survives a backend GOAWAY: in-flight calls finish, new calls go elsewhere', async () => {
    const leaving = await startEchoBackend({ name: 'leaving' });
    const staying = await startEchoBackend({ name: 'staying' });
    const lb = await startBalancer(poolConfig([leaving.address, staying.address]));
    const client = echoClient(lb.listen);
    try {
      const slow = Array.from({ length: 6 }, () => unary(client, { delayMs: 400 }));
      await waitFor('slow calls spread', () => leaving.stats.active === 3);
      const stopped = leaving.stop(); // grpc-js tryShutdown: GOAWAY, in-flight calls finish
      await sleep(50);
      const during = await Promise.all(Array.from({ length: 20 }, () => unary(client, {})));
      expect(during.filter((r) => r.error)).toEqual([]);
      expect(during.every((r) => r.response!.backend === 'staying')).toBe(true);
      const finished = await Promise.all(slow);
      expect(finished.filter((r) => r.error)).toEqual([]);
      await stopped;
      expect(await allIdle(lb)).toEqual([0, 0]);
    } finally {
      client.close();
      await lb.stop();
      await staying.stop();
    }
  });

  it('answers UNAVAILABLE when a backend ends a response without a grpc-status', async () => {
    // A raw HTTP/2 backend: response headers, then the stream closed (Node ends it before its
    // RST_STREAM, so the balancer sees END_STREAM without trailers).
    const raw = http2.createServer();
    raw.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      setTimeout(() => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 20);
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const lb = await startBalancer(poolConfig([`127.0.0.1:${(raw.address() as { port: number }).port}`]));
    const client = echoClient(lb.listen);
    try {
      const r = await unary(client, {});
      expect(r.error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(r.error?.details).toMatch(/pool "echo" ended the response without a grpc-status/);
      expect(await allIdle(lb)).toEqual([0]);
    } finally {
      client.close();
      await lb.stop();
      raw.close();
    }
  });

  it('retries a stream the backend refused (REFUSED_STREAM) on another backend', async () => {
    const refusing = http2.createServer();
    let refused = 0;
    refusing.on('stream', (stream) => {
      stream.on('error', () => {});
      refused++;
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    });
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    const healthy = await startEchoBackend({ name: 'after-refusal' });
    const lb = await startBalancer(
      poolConfig([`127.0.0.1:${(refusing.address() as { port: number }).port}`, healthy.address], { algorithm: 'round_robin' }),
    );
    const client = echoClient(lb.listen);
    try {
      const results = await Promise.all(Array.from({ length: 20 }, () => unary(client, { payload: Buffer.from('again') })));
      expect(results.filter((r) => r.error)).toEqual([]);
      expect(results.every((r) => r.response!.payload.toString() === 'again')).toBe(true);
      expect(refused).toBeGreaterThan(0);
      expect(healthy.stats.calls).toBe(20);
    } finally {
      client.close();
      await lb.stop();
      await healthy.stop();
      refusing.close();
    }
  });

  it('opens more upstream sessions when a backend limits concurrent streams', async () => {
    const limited = await startEchoBackend({ name: 'limited', maxConcurrentStreams: 10 });
    const lb = await startBalancer(poolConfig([limited.address]));
    const client = echoClient(lb.listen);
    const streams = Array.from({ length: 45 }, () => client.ServerStream({ hang: true }));
    streams.forEach((s) => s.on('error', () => {}));
    try {
      await waitFor('45 streams at the backend', () => limited.stats.active === 45);
      const state = await lb.state();
      expect(state.pools[0]!.backends[0]!.sessions).toBeGreaterThanOrEqual(5);
    } finally {
      streams.forEach((s) => s.cancel());
      client.close();
      await lb.stop();
      await limited.stop();
    }
  });
});
