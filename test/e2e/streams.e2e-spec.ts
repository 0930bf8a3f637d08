/**
 * Long-lived streams follow the fleet (issue 23): 300 server-streaming subscriptions through the
 * balancer, with a client that re-opens a subscription when it ends UNAVAILABLE, as a gRPC client
 * should. Rebalance on 3 -> 6 backends, a maximum stream age, a bounded drain; unary calls under
 * the same load never fail; with one process and with --workers 2.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { startEchoBackend, type EchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { unary, type EchoClient } from '../support/grpc';
import { killAll, startBalancer, waitFor } from '../support/processes';

interface Ended {
  code: number;
  details: string;
  /** When the status reached the client (ms since epoch), and how old the stream was then (from its response headers, as the balancer counts). */
  at: number;
  ageMs: number;
}

/** N subscriptions spread over `clients`, each re-opened at once when it ends UNAVAILABLE (until stopped). */
function subscriptions(clients: EchoClient[], n: number) {
  const ended: Ended[] = [];
  const reopenMs: number[] = [];
  const calls = new Set<grpc.ClientReadableStream<unknown>>();
  let stopping = false;
  const open = (client: EchoClient, endedAt?: number): void => {
    let started = Date.now();
    const call = client.ServerStream({ hang: true }) as grpc.ClientReadableStream<unknown>;
    calls.add(call);
    call.on('metadata', () => {
      started = Date.now();
      if (endedAt !== undefined) reopenMs.push(started - endedAt);
    });
    call.on('error', () => {});
    call.on('status', (s: grpc.StatusObject) => {
      calls.delete(call);
      if (stopping) return;
      const now = Date.now();
      ended.push({ code: s.code, details: s.details, at: now, ageMs: now - started });
      if (s.code === grpc.status.UNAVAILABLE) open(client, now);
    });
  };
  for (let i = 0; i < n; i++) open(clients[i % clients.length]!);
  return {
    ended,
    reopenMs,
    stop() {
      stopping = true;
      for (const c of calls) c.cancel();
    },
  };
}

/** Unary calls back to back until stopped, counting failures. */
function unaryLoad(client: EchoClient) {
  let stopping = false;
  const result = { ok: 0, failed: [] as string[] };
  const loop = (async () => {
    while (!stopping && result.ok + result.failed.length < 100_000) {
      const r = await unary(client, { payload: Buffer.from('u') });
      if (r.error) result.failed.push(`${r.error.code} ${r.error.details}`);
      else result.ok++;
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      return result;
    },
  };
}

const cv = (xs: number[]): number => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length) / mean;
};

const pool = (addresses: string[], streams: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  pools: [{ name: 'subs', match: { services: ['*'] }, algorithm: 'least_conn', streams, ...extra, backends: addresses.map((address) => ({ address })) }],
});

for (const workers of ['1', '2']) {
  describe(`long-lived streams follow the fleet (--workers ${workers})`, () => {
    let backends: EchoBackend[];
    const extra = ['--workers', workers];

    beforeAll(async () => {
      backends = await Promise.all(['s1', 's2', 's3', 's4', 's5', 's6'].map((name) => startEchoBackend({ name })));
    });

    afterAll(async () => {
      await Promise.all((backends ?? []).map((b) => b.stop()));
      killAll();
    });

    const active = (): number[] => backends.map((b) => b.stats.active);

    it('3 -> 6 backends: an even spread (cv <= 0.15) within 30 s, ending at most 1.25x the streams that had to move, at most maxPerSecond x 1.5 a second, each UNAVAILABLE "rebalanced"; unary calls never fail', async () => {
      const streams = { rebalance: { tolerancePercent: 10, maxPerSecond: 20, minAgeMs: 1000 } };
      const lb = await startBalancer(pool(backends.slice(0, 3).map((b) => b.address), streams), extra);
      const clients = [0, 1, 2, 3].map(() => echoClient(lb.listen));
      const subs = subscriptions(clients, 300);
      const unaryClient = echoClient(lb.listen);
      const load = unaryLoad(unaryClient);
      try {
        await waitFor('300 streams on the first three backends', () => active().slice(0, 3).reduce((a, b) => a + b, 0) === 300, 20_000);
        const before = active();
        const mustMove = before.reduce((a, s) => a + Math.max(0, s - 50), 0);
        expect(mustMove).toBeGreaterThanOrEqual(145);
        const t0 = Date.now();
        await lb.reload(pool(backends.map((b) => b.address), streams));
        const spread = await waitFor('an even spread over six', () => {
          const a = active();
          return a.reduce((x, y) => x + y, 0) === 300 && cv(a) <= 0.15 && a;
        }, 30_000);
        const evenMs = Date.now() - t0;
        expect(evenMs).toBeLessThanOrEqual(30_000);
        const rebalanced = subs.ended.filter((e) => e.at >= t0);
        for (const e of rebalanced) {
          expect(e.code).toBe(grpc.status.UNAVAILABLE);
          expect(e.details).toMatch(/^rebalanced/);
        }
        expect(rebalanced.length).toBeLessThanOrEqual(Math.ceil(1.25 * mustMove));
        const perSecond = new Map<number, number>();
        for (const e of rebalanced) perSecond.set(Math.floor(e.at / 1000), (perSecond.get(Math.floor(e.at / 1000)) ?? 0) + 1);
        expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(20 * 1.5);
        const reopen = [...subs.reopenMs].sort((a, b) => a - b);
        process.stdout.write(
          `streams (--workers ${workers}): 3 -> 6 even (cv ${cv(spread).toFixed(3)}: ${spread.join(' ')}) after ${evenMs} ms; ended ${rebalanced.length} of ${mustMove} that had to move; most in one second ${Math.max(...perSecond.values())}; re-open p50 ${reopen[Math.floor(reopen.length / 2)]} ms, p99 ${reopen[Math.min(reopen.length - 1, Math.floor(reopen.length * 0.99))]} ms\n`,
        );
        // It goes on until every backend is within tolerance (10% of 50), and still ends no more than the imbalance needs.
        await waitFor('every backend within tolerance', () => {
          const a = active();
          return a.reduce((x, y) => x + y, 0) === 300 && a.every((n) => n >= 45 && n <= 55);
        }, 30_000);
        expect(subs.ended.filter((e) => e.at >= t0).length).toBeLessThanOrEqual(Math.ceil(1.25 * mustMove));
        expect(await lb.metrics()).toMatch(/switchboard_streams_ended_total\{pool="subs",reason="rebalance"\} [1-9]/);
      } finally {
        const u = await load.stop();
        subs.stop();
        clients.forEach((c) => c.close());
        unaryClient.close();
        await lb.stop();
        expect(u.failed).toEqual([]);
        expect(u.ok).toBeGreaterThan(100);
      }
      await waitFor('streams gone from the backends', () => active().every((n) => n === 0), 15_000);
    });

    it('maxAgeMs 6000 with 20% jitter ends every stream at 4.8-7.2 s of age, and none gets older', async () => {
      const lb = await startBalancer(pool(backends.slice(0, 3).map((b) => b.address), { maxAgeMs: 6000, maxAgeJitterPercent: 20 }), extra);
      const clients = [0, 1].map(() => echoClient(lb.listen));
      const subs = subscriptions(clients, 60);
      try {
        await waitFor('60 streams', () => active().reduce((a, b) => a + b, 0) === 60);
        let oldest = 0;
        await waitFor('every first-generation stream ended', async () => {
          const state = (await lb.state()) as unknown as { pools: { backends: { oldestStreamAgeMs: number | null }[] }[] };
          for (const b of state.pools[0]!.backends) oldest = Math.max(oldest, b.oldestStreamAgeMs ?? 0);
          return subs.ended.length >= 60;
        }, 20_000);
        const first = subs.ended.slice(0, 60);
        for (const e of first) {
          expect(e.code).toBe(grpc.status.UNAVAILABLE);
          expect(e.details).toMatch(/^max stream age/);
        }
        const ages = first.map((e) => e.ageMs).sort((a, b) => a - b);
        process.stdout.write(`streams (--workers ${workers}): max age 6000 +-20%: ended at ${ages[0]}-${ages[ages.length - 1]} ms of age; oldest seen in /state ${oldest} ms\n`);
        // The client's clock starts when it hears the response headers, a few ms after the balancer
        // counts the stream as begun (4796 ms was seen for an end at 4800 of the balancer's age).
        expect(ages[0]).toBeGreaterThanOrEqual(4800 - 50);
        // The client hears of the end a little after the balancer sends it (a few ms; more on a busy machine).
        expect(ages[ages.length - 1]).toBeLessThanOrEqual(7200 + 250);
        expect(oldest).toBeLessThanOrEqual(7200 + 250);
        expect(await lb.metrics()).toMatch(/switchboard_streams_ended_total\{pool="subs",reason="max_age"\} [1-9]/);
      } finally {
        subs.stop();
        clients.forEach((c) => c.close());
        await lb.stop();
      }
      await waitFor('streams gone from the backends', () => active().every((n) => n === 0), 15_000);
    });

    it('drainTimeoutMs ends the streams of a drained backend that long after the drain, and only those', async () => {
      const addresses = backends.slice(0, 3).map((b) => b.address);
      const streams = { drainTimeoutMs: 2000 };
      const lb = await startBalancer(pool(addresses, streams), extra);
      const clients = [0, 1].map(() => echoClient(lb.listen));
      const subs = subscriptions(clients, 30);
      try {
        await waitFor('30 streams over three', () => active().slice(0, 3).every((n) => n === 10), 20_000);
        const t0 = Date.now();
        await lb.reload({ pools: [{ name: 'subs', match: { services: ['*'] }, algorithm: 'least_conn', streams, backends: addresses.map((address, i) => ({ address, drain: i === 0 })) }] });
        await waitFor('the drained backend\'s streams ended', () => subs.ended.length >= 10, 15_000);
        const drained = subs.ended.slice(0, 10);
        for (const e of drained) {
          expect(e.code).toBe(grpc.status.UNAVAILABLE);
          expect(e.details).toMatch(/^drained/);
          expect(e.at - t0).toBeGreaterThanOrEqual(2000 - 100);
        }
        process.stdout.write(`streams (--workers ${workers}): drain timeout 2000 ms: ended ${drained.map((e) => e.at - t0).sort((a, b) => a - b)[0]}-${Math.max(...drained.map((e) => e.at - t0))} ms after the drain\n`);
        // Re-opened on the other two; the drained one keeps none.
        await waitFor('re-opened elsewhere', () => active()[0] === 0 && active()[1]! + active()[2]! === 30);
        expect(subs.ended).toHaveLength(10);
      } finally {
        subs.stop();
        clients.forEach((c) => c.close());
        await lb.stop();
      }
      await waitFor('streams gone from the backends', () => active().every((n) => n === 0), 15_000);
    });
  });
}
