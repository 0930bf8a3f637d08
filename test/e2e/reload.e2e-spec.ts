/**
 * Configuration from a file: SIGHUP hot reload that keeps survivors' counters and connections,
 * lets removed backends finish their calls, rejects an invalid file while the old revision keeps
 * serving; and SIGTERM, which drains in-flight calls and exits 0.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { startEchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { killAll, poolConfig, sleep, startBalancer, waitFor } from '../support/processes';
import { collect, unary } from '../support/grpc';

afterAll(() => killAll());

describe('SIGHUP reload', () => {
  it('swaps configuration without dropping calls: survivors keep counters, removed backends finish theirs', async () => {
    const [b1, b2, b3] = await Promise.all(['r1', 'r2', 'r3'].map((name) => startEchoBackend({ name })));
    const lb = await startBalancer(poolConfig([b1!.address, b2!.address]));
    const client = echoClient(lb.listen);
    try {
      for (let i = 0; i < 10; i++) expect((await unary(client, {})).error).toBeUndefined();
      // A long call in flight on each backend, to outlive the reload.
      const long = [unary(client, { delayMs: 800 }), unary(client, { delayMs: 800 })];
      await waitFor('long calls at both', () => b1!.stats.active === 1 && b2!.stats.active === 1);
      const before = (await lb.state()).pools[0]!.backends;

      // Remove r1, keep r2 with a new weight, add r3; while calls keep flowing.
      let stop = false;
      const steady = (async () => {
        const results = [];
        while (!stop) results.push(await unary(client, {}));
        return results;
      })();
      await lb.reload({
        pools: [{ name: 'echo', match: { services: ['*'] }, backends: [{ address: b2!.address, weight: 3 }, { address: b3!.address }] }],
      });
      await sleep(200);
      stop = true;
      const during = await steady;
      expect(during.filter((r) => r.error)).toEqual([]);

      const after = (await lb.state()).pools[0]!.backends;
      expect(after.map((b) => b.address)).toEqual([b2!.address, b3!.address]);
      expect(after[0]!.weight).toBe(3);
      // The survivor kept its counters (and its connection: still one session per data-plane worker).
      expect(after[0]!.totalCalls).toBeGreaterThanOrEqual(before[1]!.totalCalls);
      expect(after[0]!.sessions).toBe(before[1]!.sessions);
      // Both long calls, including the one on the removed backend, finish normally.
      const done = await Promise.all(long);
      expect(done.map((r) => r.error?.code ?? 0)).toEqual([0, 0]);
      // No new calls reached the removed backend after the swap.
      const r1Calls = b1!.stats.calls;
      for (let i = 0; i < 10; i++) await unary(client, {});
      expect(b1!.stats.calls).toBe(r1Calls);
    } finally {
      client.close();
      await lb.stop();
      await Promise.all([b1, b2, b3].map((b) => b!.stop()));
    }
  });

  it('rejects an invalid file with a log line naming the field, and keeps serving the old revision', async () => {
    const backend = await startEchoBackend({ name: 'keep' });
    const lb = await startBalancer(poolConfig([backend.address]));
    const client = echoClient(lb.listen);
    try {
      await lb.reload('pools:\n  - name: echo\n    match: { services: ["*"] }\n    algorithm: fastest\n', 1);
      await waitFor('rejection logged', () => lb.logs.find((l) => l.includes('configuration rejected')));
      const line = lb.logs.find((l) => l.includes('configuration rejected'))!;
      expect(line).toContain('pools[0].algorithm');
      expect(line).toMatch(/balancer\.yaml:4/);
      expect((await lb.state()).revision).toBe(1);
      expect((await unary(client, {})).response?.backend).toBe('keep');
      expect(await lb.metrics()).toMatch(/switchboard_config_revision 1/);
    } finally {
      client.close();
      await lb.stop();
      await backend.stop();
    }
  });

  it('refuses to start on an invalid file, listing every error', async () => {
    await expect(startBalancer({ pools: [{ name: 'Bad', match: {}, backends: [{ address: 'nope' }] }] })).rejects.toThrow(
      /pools\[0\]\.name[\s\S]*pools\[0\]\.match[\s\S]*pools\[0\]\.backends\[0\]\.address/,
    );
  });
});

describe('SIGTERM', () => {
  it('lets in-flight calls finish, refuses new connections, and exits 0', async () => {
    const backend = await startEchoBackend({ name: 'drain' });
    const lb = await startBalancer(poolConfig([backend.address]));
    const client = echoClient(lb.listen);
    try {
      const inflightUnary = unary(client, { delayMs: 600 });
      const inflightStream = collect(client.ServerStream({ responseCount: 5, responseSize: 10, delayMs: 600 }));
      await waitFor('calls at the backend', () => backend.stats.active === 2);
      const exited = lb.stop('SIGTERM');
      const u = await inflightUnary;
      const s = await inflightStream;
      expect(u.error).toBeUndefined();
      expect(s.status.code).toBe(grpc.status.OK);
      expect(s.responses).toHaveLength(5);
      expect(await exited).toBe(0);
      const late = echoClient(lb.listen);
      const r = await unary(late, {}, new grpc.Metadata(), { deadline: new Date(Date.now() + 1000) });
      expect(r.error?.code).toBe(grpc.status.UNAVAILABLE);
      late.close();
    } finally {
      client.close();
      await backend.stop();
    }
  });
});
