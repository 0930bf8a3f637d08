/**
 * Per-stream balancing: calls that share a client connection still spread over backends by their
 * active streams, and each algorithm gives the spread it promises.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { startEchoBackend, type EchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { killAll, poolConfig, startBalancer, waitFor, type BalancerProcess } from '../support/processes';
import { unary, type EchoClient } from '../support/grpc';

describe('per-stream least_conn', () => {
  let backends: EchoBackend[];
  let lb: BalancerProcess;

  beforeAll(async () => {
    backends = await Promise.all(['b1', 'b2', 'b3'].map((name) => startEchoBackend({ name })));
    lb = await startBalancer(poolConfig(backends.map((b) => b.address)));
  });

  afterAll(async () => {
    await lb?.stop();
    await Promise.all(backends.map((b) => b.stop()));
    killAll();
  });

  it('spreads 300 long-lived streams from 2 client connections 100/100/100 (±2)', async () => {
    const clients = [echoClient(lb.listen), echoClient(lb.listen)];
    const calls: grpc.ClientReadableStream<unknown>[] = [];
    try {
      for (let i = 0; i < 300; i++) {
        const call = clients[i % 2]!.ServerStream({ hang: true });
        call.on('error', () => {});
        calls.push(call);
      }
      const counts = await waitFor('300 streams at the backends', () => {
        const active = backends.map((b) => b.stats.active);
        return active.reduce((x, y) => x + y, 0) === 300 && active;
      });
      for (const c of counts) expect(Math.abs(c - 100)).toBeLessThanOrEqual(2);
      // The balancer's own view agrees with the backends'.
      const state = await lb.state();
      expect(state.pools[0]!.backends.map((b) => b.activeStreams)).toEqual(counts);
      // Two client connections, and one upstream session per backend (per data-plane worker): the spread is per stream.
      const workers = (state as { workers?: { count: number } }).workers?.count ?? 1;
      expect(state.pools[0]!.backends.map((b) => b.sessions)).toEqual([workers, workers, workers]);
    } finally {
      for (const c of calls) c.cancel();
      clients.forEach((c) => c.close());
    }
    await waitFor('streams released', async () => (await lb.state()).pools[0]!.backends.every((b) => b.activeStreams === 0));
  });

  it('sends new calls to the backend with the fewest active streams', async () => {
    const client = echoClient(lb.listen);
    const held: { call: grpc.ClientReadableStream<unknown>; backend: Promise<string> }[] = [];
    try {
      for (let i = 0; i < 30; i++) {
        const call = client.ServerStream({ hang: true });
        call.on('error', () => {});
        held.push({ call, backend: new Promise((resolve) => call.on('metadata', (md: grpc.Metadata) => resolve(String(md.get('x-backend')[0])))) });
      }
      const names = await Promise.all(held.map((h) => h.backend));
      expect(['b1', 'b2', 'b3'].map((n) => names.filter((x) => x === n).length)).toEqual([10, 10, 10]);
      // Let b1's streams end: b1 has 0 active, b2 and b3 have 10 each.
      held.filter((_, i) => names[i] === 'b1').forEach((h) => h.call.cancel());
      await waitFor('b1 idle', async () => (await lb.state()).pools[0]!.backends[0]!.activeStreams === 0);
      // Each short call finds b1 the least loaded, so all ten go there.
      const went: string[] = [];
      for (let i = 0; i < 10; i++) went.push((await unary(client, {})).response!.backend);
      expect(went).toEqual(Array(10).fill('b1'));
    } finally {
      held.forEach((h) => h.call.cancel());
      client.close();
    }
  });
});

describe.each([
  { algorithm: 'round_robin', weights: [1, 1, 1], expected: [10, 10, 10] },
  { algorithm: 'weighted_round_robin', weights: [1, 2, 3], expected: [5, 10, 15] },
])('$algorithm', ({ algorithm, weights, expected }) => {
  let backends: EchoBackend[];
  let lb: BalancerProcess;
  let client: EchoClient;

  beforeAll(async () => {
    backends = await Promise.all(weights.map((_, i) => startEchoBackend({ name: `w${i}` })));
    lb = await startBalancer({
      pools: [{ name: 'echo', match: { services: ['*'] }, algorithm, backends: backends.map((b, i) => ({ address: b.address, weight: weights[i] })) }],
    });
    client = echoClient(lb.listen);
  });

  afterAll(async () => {
    client?.close();
    await lb?.stop();
    await Promise.all(backends.map((b) => b.stop()));
  });

  it(`gives ${expected.join('/')} of 30 sequential calls`, async () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const r = await unary(client, {});
      seen.set(r.response!.backend, (seen.get(r.response!.backend) ?? 0) + 1);
    }
    expect(backends.map((b) => seen.get(b.name) ?? 0)).toEqual(expected);
  });
});

describe.each(['p2c', 'least_response_time'])('%s', (algorithm) => {
  it('serves every call and uses every backend', async () => {
    const backends = await Promise.all(['x', 'y', 'z'].map((name) => startEchoBackend({ name })));
    const lb = await startBalancer(poolConfig(backends.map((b) => b.address), { algorithm }));
    const client = echoClient(lb.listen);
    try {
      const results = await Promise.all(Array.from({ length: 300 }, () => unary(client, { delayMs: 5 })));
      expect(results.filter((r) => r.error)).toHaveLength(0);
      for (const b of backends) expect(b.stats.calls).toBeGreaterThan(30);
    } finally {
      client.close();
      await lb.stop();
      await Promise.all(backends.map((b) => b.stop()));
    }
  });
});

describe('weights hold at any concurrency (issue 26)', () => {
  const cases: [string, string[]][] = [
    ['least_conn', ['--workers', '1']],
    ['p2c', ['--workers', '1']],
    ['least_conn', ['--workers', '2']],
    ['p2c', ['--workers', '2']],
  ];
  for (const [algorithm, flags] of cases) {
    it(`${algorithm} (${flags.join(' ')}): weights 19:1 give 19:1 (±2%) over 2,000 sequential calls`, async () => {
      const [heavy, light] = await Promise.all(['heavy', 'light'].map((name) => startEchoBackend({ name })));
      const lb = await startBalancer({ pools: [{ name: 'echo', match: { services: ['*'] }, algorithm, backends: [{ address: heavy!.address, weight: 19 }, { address: light!.address, weight: 1 }] }] }, flags);
      // Two client connections (with 2 workers, one on each), one call at a time.
      const clients = [echoClient(lb.listen), echoClient(lb.listen)];
      try {
        for (let i = 0; i < 2000; i++) expect((await unary(clients[i % 2]!, {})).error).toBeUndefined();
        const share = heavy!.stats.calls / 2000;
        process.stdout.write(`balancing: ${algorithm} ${flags.join(' ')}: heavy ${heavy!.stats.calls}, light ${light!.stats.calls}\n`);
        expect(Math.abs(share - 0.95)).toBeLessThanOrEqual(0.02);
      } finally {
        clients.forEach((c) => c.close());
        await lb.stop();
        await Promise.all([heavy!.stop(), light!.stop()]);
      }
    }, 60_000);
  }
});
