/**
 * `switchboard balancer --workers 2`: one balancer from outside, two data-plane processes inside.
 * Real echo backends on 127.0.0.1, real grpc-js clients (each on its own connection), the real CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { startEchoBackend, type EchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { collect, unary, type EchoClient } from '../support/grpc';
import { killAll, poolConfig, sleep, spawnBackend, startBalancer, waitFor, writeTempConfig, type BalancerProcess, type BalancerStateDoc } from '../support/processes';
import { steadyTraffic } from '../support/traffic';
import { RawH2Connection } from '../support/h2-frames';
import { runCli } from '../support/cli';
import { spawnSync } from 'node:child_process';
import * as net from 'node:net';

const WORKERS = ['--workers', '2'];
const said = (what: string): void => {
  process.stdout.write(`workers: ${what}\n`);
};

type WorkersDoc = BalancerStateDoc & { workers: { count: number; restarts: number; processes: { pid: number; activeStreams: number }[] } };
const stateOf = async (lb: BalancerProcess): Promise<WorkersDoc> => (await lb.state()) as WorkersDoc;
const allIdle = (s: BalancerStateDoc): boolean => s.pools.every((p) => p.backends.every((b) => b.activeStreams === 0));

/** Metric samples of `name` as label string → value. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(name.length, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** Hanging server streams on each client: `perClient` each; resolves once the balancer counts them all. */
function hang(clients: EchoClient[], perClient: number): grpc.ClientReadableStream<unknown>[] {
  const calls: grpc.ClientReadableStream<unknown>[] = [];
  for (let i = 0; i < perClient; i++) {
    for (const c of clients) {
      const call = c.ServerStream({ hang: true });
      call.on('error', () => {});
      calls.push(call);
    }
  }
  return calls;
}

/**
 * `n` clients, each connected (one call made) before the next connects. The primary hands
 * connections to workers in turn as they arrive one by one; a burst of simultaneous connections
 * can go to one worker several in a row (node:cluster's round robin queues them behind a busy
 * hand-off), which these tests do not want to depend on.
 */
async function connectInTurn(address: string, n: number): Promise<EchoClient[]> {
  const clients: EchoClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = echoClient(address);
    clients.push(c);
    expect((await unary(c, {})).error).toBeUndefined();
  }
  return clients;
}

afterAll(() => killAll());

describe('--workers 2: one balancer from outside', () => {
  let backends: EchoBackend[];
  let lb: BalancerProcess;

  beforeAll(async () => {
    backends = await Promise.all(['w1', 'w2', 'w3'].map((name) => startEchoBackend({ name })));
    lb = await startBalancer(poolConfig(backends.map((b) => b.address)), WORKERS);
  });

  afterAll(async () => {
    await lb?.stop();
    await Promise.all(backends.map((b) => b.stop()));
  });

  it('serves all four call types on connections spread over both workers', async () => {
    const clients = await connectInTurn(lb.listen, 4);
    try {
      // One hanging call per connection shows where each connection landed.
      const held = hang(clients, 1);
      await waitFor('4 calls in flight', async () => (await stateOf(lb)).workers.processes.reduce((n, p) => n + p.activeStreams, 0) === 4);
      const s = await stateOf(lb);
      expect(s.workers.count).toBe(2);
      expect(s.workers.processes.map((p) => p.activeStreams).sort()).toEqual([2, 2]);
      held.forEach((c) => c.cancel());

      for (const client of clients) {
        const u = await unary(client, { payload: Buffer.from('u') });
        expect(u.error).toBeUndefined();
        expect(u.response!.payload.toString()).toBe('u');

        const cs = await new Promise<{ err: grpc.ServiceError | null; res?: { received: number } }>((resolve) => {
          const call = client.ClientStream((err: grpc.ServiceError | null, res?: { received: number }) => resolve({ err, res }));
          for (let i = 0; i < 5; i++) call.write({ payload: Buffer.from('c') });
          call.end();
        });
        expect(cs.err).toBeNull();
        expect(cs.res!.received).toBe(5);

        const ss = await collect(client.ServerStream({ responseCount: 7 }));
        expect(ss.status.code).toBe(grpc.status.OK);
        expect(ss.responses).toHaveLength(7);

        const bidi = await new Promise<{ n: number; code: number }>((resolve) => {
          const call = client.Bidi();
          let n = 0;
          call.on('data', () => {
            if (++n < 3) call.write({ payload: Buffer.from('b') });
            else call.end();
          });
          call.on('error', () => {});
          call.on('status', (st: grpc.StatusObject) => resolve({ n, code: st.code }));
          call.write({ payload: Buffer.from('b') });
        });
        expect(bidi).toEqual({ n: 3, code: grpc.status.OK });
      }
    } finally {
      clients.forEach((c) => c.close());
    }
    await waitFor('streams released', async () => allIdle(await lb.state()));
  });

  it('spreads 300 long-lived streams from 2 client connections 100/100/100 (±2), counted once per backend', async () => {
    const clients = await connectInTurn(lb.listen, 2);
    const calls = hang(clients, 150);
    try {
      const counts = await waitFor('300 streams at the backends', () => {
        const active = backends.map((b) => b.stats.active);
        return active.reduce((x, y) => x + y, 0) === 300 && active;
      });
      for (const c of counts) expect(Math.abs(c - 100)).toBeLessThanOrEqual(2);
      const s = await stateOf(lb);
      expect(s.pools[0]!.backends.map((b) => b.activeStreams)).toEqual(counts);
      // Each worker carries one connection's 150 streams.
      expect(s.workers.processes.map((p) => p.activeStreams)).toEqual([150, 150]);
      // One series per backend in /metrics, the sum of both workers.
      const gauge = samples(await lb.metrics(), 'switchboard_backend_active_streams');
      expect(gauge.size).toBe(3);
      expect(backends.map((b) => gauge.get(`{pool="echo",backend="${b.address}"}`))).toEqual(counts);
    } finally {
      calls.forEach((c) => c.cancel());
      clients.forEach((c) => c.close());
    }
    await waitFor('streams released', async () => allIdle(await lb.state()));
  });

  it('reloads under traffic (SIGHUP) on both workers without a failed call; the ACKed revision is the one both serve', async () => {
    const extra = await startEchoBackend({ name: 'w4' });
    const clients = Array.from({ length: 4 }, () => echoClient(lb.listen));
    try {
      const traffic = steadyTraffic(clients, { streams: 1, maxCalls: 20_000 });
      await sleep(300);
      const before = (await lb.state()).revision;
      await lb.reload(poolConfig([backends[1]!.address, backends[2]!.address, extra.address]));
      await sleep(300);
      const result = await traffic.stop();
      expect(result.unaryFailed).toEqual([]);
      expect(result.streamsFailed).toEqual([]);
      expect(result.unaryOk).toBeGreaterThan(50);
      const s = await lb.state();
      expect(s.revision).toBe(before + 1);
      expect(s.pools[0]!.backends.map((b) => b.address)).toEqual([backends[1]!.address, backends[2]!.address, extra.address]);
      expect(extra.stats.calls).toBeGreaterThan(0);
      const metrics = await lb.metrics();
      expect(samples(metrics, 'switchboard_config_revision').get('')).toBe(before + 1);
      // Counted once for the balancer, not once per worker.
      expect(samples(metrics, 'switchboard_config_reloads_total').get('{result="applied"}')).toBe(before + 1);
    } finally {
      clients.forEach((c) => c.close());
      await lb.reload(poolConfig(backends.map((b) => b.address)));
      await extra.stop();
    }
  });
});

describe('--workers 2: counts, health and ejection decided once', () => {
  it('ends 10,000 calls with random cancels and a killed backend with every count at 0', async () => {
    const procs = await Promise.all(['k1', 'k2', 'k3'].map((n) => spawnBackend(n)));
    const lb = await startBalancer(poolConfig(procs.map((p) => p.address)), WORKERS);
    const clients = Array.from({ length: 4 }, () => echoClient(lb.listen));
    let seed = 7;
    const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    try {
      let sent = 0;
      const codes = new Map<number, number>();
      const worker = async (client: EchoClient): Promise<void> => {
        while (sent < 10_000) {
          sent++;
          const r = random();
          const opts = r < 0.3 ? { deadline: new Date(Date.now() + 1 + Math.floor(random() * 5)) } : {};
          const res = await unary(client, r < 0.1 ? { hang: true } : { delayMs: r < 0.5 ? 2 : 0 }, new grpc.Metadata(), r < 0.1 ? { deadline: new Date(Date.now() + 20) } : opts);
          const code = res.error?.code ?? 0;
          codes.set(code, (codes.get(code) ?? 0) + 1);
          if (sent === 5_000) await procs[2]!.kill('SIGKILL');
        }
      };
      await Promise.all(clients.flatMap((c) => [worker(c), worker(c), worker(c)]));
      expect([...codes.values()].reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(10_000);
      expect(codes.get(0)).toBeGreaterThan(5_000);
      const s = await waitFor('every count back to 0', async () => {
        const st = await stateOf(lb);
        return allIdle(st) && st.workers.processes.every((p) => p.activeStreams === 0) && st;
      });
      expect(s.workers.processes).toHaveLength(2);
      // The backends agree once the last cancels (RST_STREAM) have reached them.
      for (const p of procs.slice(0, 2)) await waitFor(`${p.name} idle`, async () => (await p.stats()).active === 0);
    } finally {
      clients.forEach((c) => c.close());
      await lb.stop();
      await Promise.all(procs.map((p) => p.kill()));
    }
  });

  it('probes each backend once per interval, and both workers follow its verdict at once', async () => {
    const [a, b] = await Promise.all(['h1', 'h2'].map((name) => startEchoBackend({ name })));
    const lb = await startBalancer(
      {
        healthPolicies: [{ name: 'hc', active: { protocol: 'grpc', service: 'switchboard.test.v1.Echo', intervalMs: 100, timeoutMs: 500, healthyThreshold: 1, unhealthyThreshold: 1 } }],
        pools: [{ name: 'echo', match: { services: ['*'] }, healthPolicy: 'hc', backends: [{ address: a!.address }, { address: b!.address }] }],
      },
      WORKERS,
    );
    const clients = Array.from({ length: 4 }, () => echoClient(lb.listen));
    try {
      await waitFor('both healthy', async () => (await lb.state()).pools[0]!.backends.every((x) => x.healthy && x.available));
      const start = a!.healthChecks.count;
      await sleep(2_000);
      // One prober: about 20 checks in 2 s at 100 ms (±10% jitter); two would make about 40.
      const checks = a!.healthChecks.count - start;
      expect(checks).toBeGreaterThanOrEqual(12);
      expect(checks).toBeLessThanOrEqual(26);

      a!.setHealth('NOT_SERVING');
      await waitFor('h1 unhealthy', async () => (await lb.state()).pools[0]!.backends[0]!.healthy === false);
      const calls = a!.stats.calls;
      for (let i = 0; i < 10; i++) for (const c of clients) expect((await unary(c, {})).response?.backend).toBe('h2');
      expect(a!.stats.calls).toBe(calls);
    } finally {
      clients.forEach((c) => c.close());
      await lb.stop();
      await Promise.all([a!.stop(), b!.stop()]);
    }
  });

  it('ejects on the outcomes of both workers together', async () => {
    const only = await startEchoBackend({ name: 'o1' });
    const lb = await startBalancer(
      {
        healthPolicies: [{ name: 'eject', passive: { consecutiveFailures: 4, baseEjectionMs: 60_000, maxEjectionPercent: 100 } }],
        pools: [{ name: 'echo', match: { services: ['*'] }, healthPolicy: 'eject', panicThreshold: 0, backends: [{ address: only.address }] }],
      },
      WORKERS,
    );
    const clients = await connectInTurn(lb.listen, 2);
    try {
      const held = hang(clients, 1);
      await waitFor('one call on each worker', async () => (await stateOf(lb)).workers.processes.every((p) => p.activeStreams === 1));
      held.forEach((c) => c.cancel());
      // The cancelled calls are outcomes too (they reset a streak): let them reach the primary first.
      await sleep(200);
      // Two failures on each worker: below the threshold of 4 for either, 4 for the balancer.
      for (const c of clients) for (let i = 0; i < 2; i++) expect((await unary(c, { statusCode: grpc.status.UNAVAILABLE })).error?.code).toBe(grpc.status.UNAVAILABLE);
      await waitFor('ejected', async () => (await lb.state()).pools[0]!.backends[0]!.ejected);
      // Both workers stop sending it calls.
      const calls = only.stats.calls;
      for (const c of clients) expect((await unary(c, {})).error?.code).toBe(grpc.status.UNAVAILABLE);
      expect(only.stats.calls).toBe(calls);
    } finally {
      clients.forEach((c) => c.close());
      await lb.stop();
      await only.stop();
    }
  });
});

describe('--workers: bad values and a start that cannot listen', () => {
  it('refuses 0, non-numbers and absurd counts before forking anything', async () => {
    const config = writeTempConfig(poolConfig(['127.0.0.1:1']));
    for (const bad of ['0', '-2', 'two', '1.5', '100000']) {
      const r = await runCli(['balancer', '--listen', '127.0.0.1:0', '--ops', '127.0.0.1:0', '--config', config, '--workers', bad]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/--workers must be/);
    }
  });

  it('fails to start with the listen error when the port is taken, leaving no worker behind', async () => {
    const taken = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => taken.once('listening', r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const r = await runCli(['balancer', '--listen', `127.0.0.1:${port}`, '--ops', '127.0.0.1:0', '--config', writeTempConfig(poolConfig(['127.0.0.1:1'])), '--workers', '2']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/EADDRINUSE/);
      // The workers went with the primary.
      await waitFor('no process left on the port', () => spawnSync('pgrep', ['-f', `--listen 127.0.0.1:${port}`]).stdout.toString().trim() === '', 5000);
    } finally {
      taken.close();
    }
  });
});

describe('--workers 2: limits are the balancer\'s totals', () => {
  it('--max-connections 4 serves about 4 of 8 connections across both workers', async () => {
    const backend = await startEchoBackend({ name: 'l1' });
    const lb = await startBalancer(poolConfig([backend.address]), [...WORKERS, '--max-connections', '4']);
    const conns = Array.from({ length: 8 }, () => new RawH2Connection(lb.listen));
    try {
      await Promise.all(conns.map((c) => c.connected.catch(() => undefined)));
      await Promise.race([Promise.all(conns.map((c) => c.done)), sleep(2000)]);
      const closed = conns.filter((c) => c.closed).length;
      // Each worker enforces 2; the primary hands connections out in turn.
      expect(closed).toBeGreaterThanOrEqual(4);
      expect(closed).toBeLessThanOrEqual(5);
      expect(samples(await lb.metrics(), 'switchboard_downstream_rejected_total').get('{reason="connection_limit"}')).toBe(closed);
    } finally {
      conns.forEach((c) => c.close());
      await lb.stop();
      await backend.stop();
    }
  });
});

describe('--workers 2: worker failure and shutdown', () => {
  it('replaces a killed worker while the other serves; its calls end UNAVAILABLE and its counts leave the totals', async () => {
    const backends = await Promise.all(['d1', 'd2'].map((name) => startEchoBackend({ name })));
    const lb = await startBalancer(poolConfig(backends.map((b) => b.address)), WORKERS);
    const clients = await connectInTurn(lb.listen, 2);
    try {
      const held = hang(clients, 5);
      const statuses = held.map((c) => new Promise<number>((resolve) => c.on('status', (st: grpc.StatusObject) => resolve(st.code))));
      await waitFor('5 calls on each worker', async () => (await stateOf(lb)).workers.processes.every((p) => p.activeStreams === 5));
      const victim = (await stateOf(lb)).workers.processes[0]!.pid;
      process.kill(victim, 'SIGKILL');
      // Half the calls (the victim's connection) end UNAVAILABLE; the others still hang.
      const ended = await Promise.race([Promise.all(statuses.filter((_, i) => i % 2 === 0)), Promise.all(statuses.filter((_, i) => i % 2 === 1))]);
      expect(new Set(ended)).toEqual(new Set([grpc.status.UNAVAILABLE]));
      const s = await waitFor('replacement serving', async () => {
        const st = await stateOf(lb);
        return st.workers.count === 2 && st.workers.processes.length === 2 && st;
      });
      expect(s.workers.restarts).toBe(1);
      expect(s.workers.processes.map((p) => p.pid)).not.toContain(victim);
      // The survivor's 5 calls are all that is counted.
      expect(s.pools[0]!.backends.reduce((n, b) => n + b.activeStreams, 0)).toBe(5);
      expect(samples(await lb.metrics(), 'switchboard_worker_restarts_total').get('')).toBe(1);
      // Every client gets served again (the one that lost its connection reconnects).
      for (const c of clients) for (let i = 0; i < 5; i++) expect((await unary(c, {})).error).toBeUndefined();
      held.forEach((c) => c.cancel());
      await waitFor('streams released', async () => allIdle(await lb.state()));
    } finally {
      clients.forEach((c) => c.close());
      await lb.stop();
      await Promise.all(backends.map((b) => b.stop()));
    }
  });

  it('replaces a worker that stops answering (SIGSTOP): a revision committed meanwhile is applied, not NACKed, and no new connection goes to it', async () => {
    const backends = await Promise.all(['s1', 's2'].map((name) => startEchoBackend({ name })));
    const lb = await startBalancer(poolConfig([backends[0]!.address]), WORKERS);
    let victim = 0;
    const clients: EchoClient[] = [];
    try {
      await connectInTurn(lb.listen, 2).then((c) => clients.push(...c));
      const before = await stateOf(lb);
      victim = before.workers.processes[0]!.pid;
      process.kill(victim, 'SIGSTOP');
      // A revision that adds a backend, committed while the worker is stopped: acknowledged once
      // the stopped worker is replaced by one on the new revision (not rolled back, not refused).
      await lb.reload(poolConfig(backends.map((b) => b.address)), before.revision + 1);
      const s = await waitFor('the stalled worker replaced', async () => {
        const st = await stateOf(lb);
        return st.workers.count === 2 && st.workers.processes.length === 2 && !st.workers.processes.some((p) => p.pid === victim) && st;
      }, 20_000);
      expect(s.revision).toBe(before.revision + 1);
      expect(samples(await lb.metrics(), 'switchboard_worker_stalls_total').get('')).toBe(1);
      // Fresh connections are all served (none handed to a stopped process), and the new backend takes calls.
      for (let i = 0; i < 6; i++) {
        const c = echoClient(lb.listen);
        clients.push(c);
        for (let j = 0; j < 3; j++) expect((await unary(c, {}, undefined, { deadline: Date.now() + 5000 })).error).toBeUndefined();
      }
      expect(backends[1]!.stats.calls).toBeGreaterThan(0);
    } finally {
      if (victim) {
        try {
          process.kill(victim, 'SIGCONT');
        } catch {
          // killed already
        }
      }
      clients.forEach((c) => c.close());
      await lb.stop();
      await Promise.all(backends.map((b) => b.stop()));
    }
  }, 60_000);

  it('strands no connection when a worker is killed while connections arrive: each is served or closed, never left open unanswered', async () => {
    // The stuck path of the churn soak (issue 28): node:cluster's hand-off kept the primary's copy
    // of a connection sent to a worker that died, so that connection stayed open with nobody
    // reading it, and a gRPC channel that reconnected onto it timed out every call it made.
    const lb = await startBalancer(poolConfig(['127.0.0.1:1']), WORKERS);
    const sockets = new Set<net.Socket>();
    let answered = 0;
    let closedUnanswered = 0;
    try {
      const [host, port] = lb.listen.split(':') as [string, string];
      const preface = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]);
      const open = (): void => {
        const s = net.connect(Number(port), host, () => s.write(preface));
        sockets.add(s);
        s.on('error', () => {});
        s.once('data', () => {
          answered++;
          sockets.delete(s);
          s.destroy();
        });
        s.once('close', () => {
          if (sockets.delete(s)) closedUnanswered++;
        });
      };
      const victim = (await stateOf(lb)).workers.processes[0]!.pid;
      // About 2,000 connections in 1 s, the worker killed 0.3 s in: a few are always on their way to it.
      const opener = setInterval(() => {
        for (let i = 0; i < 4; i++) open();
      }, 2);
      await sleep(300);
      process.kill(victim, 'SIGKILL');
      await sleep(700);
      clearInterval(opener);
      await waitFor('every connection answered or closed', () => sockets.size === 0, 10_000).catch(() => undefined);
      said(`connections answered ${answered}, closed unanswered (the client reconnects) ${closedUnanswered}, left open unanswered ${sockets.size}`);
      expect(sockets.size).toBe(0);
      expect(answered).toBeGreaterThan(500);
    } finally {
      for (const s of sockets) s.destroy();
      await lb.stop();
    }
  }, 60_000);

  it('drains every worker on SIGTERM: in-flight calls finish, then the balancer exits 0', async () => {
    const backend = await startEchoBackend({ name: 's1' });
    // A drain timeout far above the calls' 700 ms: the backend runs in this test's own process,
    // and a pause of it (GC after the heavier tests above) must not turn into a drain cut.
    const lb = await startBalancer(poolConfig([backend.address]), [...WORKERS, '--drain-timeout-ms', '20000']);
    const clients = await connectInTurn(lb.listen, 4);
    try {
      const held = hang(clients, 1);
      await waitFor('a call on each connection', async () => (await stateOf(lb)).workers.processes.every((p) => p.activeStreams === 2));
      held.forEach((c) => c.cancel());
      await waitFor('idle', async () => allIdle(await lb.state()));
      const inFlight = clients.map((c) => unary(c, { delayMs: 700 }));
      await waitFor('4 calls at the backend', () => backend.stats.active === 4);
      const code = lb.stop('SIGTERM');
      const results = await Promise.all(inFlight);
      expect({ codes: results.map((r) => r.error?.code ?? 0), cut: lb.logs.filter((l) => l.includes('connections cut')) }).toEqual({ codes: [0, 0, 0, 0], cut: [] });
      expect(await code).toBe(0);
      const after = await unary(echoClient(lb.listen), {}, new grpc.Metadata(), { deadline: new Date(Date.now() + 1000) });
      expect(after.error?.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      clients.forEach((c) => c.close());
      await backend.stop();
    }
  });
});
