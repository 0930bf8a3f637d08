/**
 * Active health checks from a pool's health policy: grpc.health.v1 Check against real grpc-js
 * backends whose answer the test flips, and plain TCP connects.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { startEchoBackend } from '../fixtures/echo-backend';
import { echoClient } from '../fixtures/echo-proto';
import { killAll, sleep, startBalancer, waitFor, type BalancerProcess } from '../support/processes';
import { unary } from '../support/grpc';

afterAll(() => killAll());

const policy = (protocol: 'grpc' | 'tcp') => ({
  name: 'fast-checks',
  active: { protocol, service: 'switchboard.test.v1.Echo', intervalMs: 150, timeoutMs: 500, healthyThreshold: 2, unhealthyThreshold: 2 },
});

async function backendsOf(lb: BalancerProcess): Promise<{ address: string; healthy: boolean; available: boolean }[]> {
  return (await lb.state()).pools[0]!.backends as unknown as { address: string; healthy: boolean; available: boolean }[];
}

describe('active gRPC health checks', () => {
  it('takes a NOT_SERVING backend out after the unhealthy threshold and brings it back after the healthy one', async () => {
    const [a, b] = await Promise.all(['ha', 'hb'].map((name) => startEchoBackend({ name })));
    const lb = await startBalancer({
      healthPolicies: [policy('grpc')],
      pools: [{ name: 'echo', match: { services: ['*'] }, healthPolicy: 'fast-checks', backends: [{ address: a!.address }, { address: b!.address }] }],
    });
    const client = echoClient(lb.listen);
    try {
      await waitFor('both healthy', async () => (await backendsOf(lb)).every((x) => x.healthy));
      a!.setHealth('NOT_SERVING');
      await waitFor('ha unhealthy', async () => (await backendsOf(lb))[0]!.healthy === false, 3000);
      const during = await Promise.all(Array.from({ length: 20 }, () => unary(client, {})));
      expect(during.map((r) => r.response?.backend)).toEqual(Array(20).fill('hb'));
      expect(lb.logs.some((l) => l.includes('"backend unhealthy"') && l.includes(a!.address))).toBe(true);
      expect(await lb.metrics()).toMatch(new RegExp(`switchboard_backend_healthy\\{pool="echo",backend="${a!.address}"\\} 0`));
      a!.setHealth('SERVING');
      await waitFor('ha healthy again', async () => (await backendsOf(lb))[0]!.healthy === true, 3000);
      const after = await Promise.all(Array.from({ length: 20 }, () => unary(client, { delayMs: 20 })));
      expect(after.filter((r) => r.response?.backend === 'ha').length).toBeGreaterThan(0);
    } finally {
      client.close();
      await lb.stop();
      await Promise.all([a!.stop(), b!.stop()]);
    }
  });

  it('never sends a call to a new backend before its first successful check', async () => {
    const good = await startEchoBackend({ name: 'good' });
    const sick = await startEchoBackend({ name: 'sick' });
    sick.setHealth('NOT_SERVING');
    const lb = await startBalancer({
      healthPolicies: [policy('grpc')],
      pools: [{ name: 'echo', match: { services: ['*'] }, healthPolicy: 'fast-checks', backends: [{ address: good.address }, { address: sick.address }] }],
    });
    const client = echoClient(lb.listen);
    try {
      await waitFor('good healthy', async () => (await backendsOf(lb))[0]!.healthy);
      await sleep(400); // several check intervals
      expect((await backendsOf(lb))[1]).toMatchObject({ healthy: false, available: false });
      for (let i = 0; i < 10; i++) expect((await unary(client, {})).response?.backend).toBe('good');
      expect(sick.stats.calls).toBe(0);
      expect(sick.healthChecks.count).toBeGreaterThan(1);
    } finally {
      client.close();
      await lb.stop();
      await Promise.all([good.stop(), sick.stop()]);
    }
  });
});

describe('active TCP health checks', () => {
  it('marks a backend that refuses connections unhealthy', async () => {
    const up = await startEchoBackend({ name: 'tcp-up' });
    const lb = await startBalancer({
      healthPolicies: [policy('tcp')],
      pools: [{ name: 'echo', match: { services: ['*'] }, healthPolicy: 'fast-checks', backends: [{ address: up.address }, { address: '127.0.0.1:1' }] }],
    });
    try {
      await waitFor('tcp-up healthy', async () => (await backendsOf(lb))[0]!.healthy);
      await sleep(400);
      expect((await backendsOf(lb))[1]!.healthy).toBe(false);
    } finally {
      await lb.stop();
      await up.stop();
    }
  });
});

describe('passive outlier ejection', () => {
  const passivePolicy = { name: 'eject', passive: { consecutiveFailures: 3, baseEjectionMs: 1000, maxEjectionPercent: 50 } };

  it('ejects a backend that answers UNAVAILABLE to every call, and brings it back after the ejection time', async () => {
    const good = await startEchoBackend({ name: 'good' });
    const broken = await startEchoBackend({ name: 'broken', failWith: 14 });
    const lb = await startBalancer({
      healthPolicies: [passivePolicy],
      pools: [{ name: 'echo', match: { services: ['*'] }, algorithm: 'round_robin', healthPolicy: 'eject', backends: [{ address: good.address }, { address: broken.address }] }],
    });
    const client = echoClient(lb.listen);
    try {
      const results = [];
      for (let i = 0; i < 30; i++) results.push(await unary(client, {}));
      // Round robin alternates: the broken backend fails 3 calls in a row of its own, then is out.
      expect(results.filter((r) => r.error).length).toBe(3);
      expect(broken.stats.calls).toBe(3);
      expect((await lb.state()).pools[0]!.backends[1]).toMatchObject({ ejected: true, available: false });
      expect(lb.logs.some((l) => l.includes('backend ejected'))).toBe(true);
      expect(await lb.metrics()).toMatch(new RegExp(`switchboard_backend_ejected\\{pool="echo",backend="${broken.address}"\\} 1`));
      await waitFor('returned from ejection', async () => (await lb.state()).pools[0]!.backends[1]!.ejected === false, 3000);
    } finally {
      client.close();
      await lb.stop();
      await Promise.all([good.stop(), broken.stop()]);
    }
  });

  it('does not count application errors, and never ejects more than maxEjectionPercent of the pool', async () => {
    const backends = await Promise.all(['x1', 'x2'].map((name) => startEchoBackend({ name, failWith: 14 })));
    const lb = await startBalancer({
      healthPolicies: [passivePolicy],
      pools: [{ name: 'echo', match: { services: ['*'] }, healthPolicy: 'eject', backends: backends.map((b) => ({ address: b.address })) }],
    });
    const client = echoClient(lb.listen);
    try {
      for (let i = 0; i < 20; i++) await unary(client, {});
      const state = (await lb.state()).pools[0]!.backends;
      expect(state.filter((b) => b.ejected)).toHaveLength(1); // 50% of 2
      expect(lb.logs.some((l) => l.includes('the pool is at its ejection limit'))).toBe(true);
    } finally {
      client.close();
      await lb.stop();
      await Promise.all(backends.map((b) => b.stop()));
    }
    const fine = await startEchoBackend({ name: 'app-errors' });
    const lb2 = await startBalancer({
      healthPolicies: [passivePolicy],
      pools: [{ name: 'echo', match: { services: ['*'] }, healthPolicy: 'eject', backends: [{ address: fine.address }] }],
    });
    const client2 = echoClient(lb2.listen);
    try {
      for (let i = 0; i < 10; i++) expect((await unary(client2, { statusCode: 5 })).error?.code).toBe(5);
      expect((await lb2.state()).pools[0]!.backends[0]).toMatchObject({ ejected: false });
    } finally {
      client2.close();
      await lb2.stop();
      await fine.stop();
    }
  });
});

describe('panic mode', () => {
  it('spreads over every backend when fewer than half are healthy, and stops when they recover', async () => {
    const backends = await Promise.all(['p1', 'p2', 'p3', 'p4'].map((name) => startEchoBackend({ name })));
    const lb = await startBalancer({
      healthPolicies: [policy('grpc')],
      pools: [{ name: 'echo', match: { services: ['*'] }, healthPolicy: 'fast-checks', backends: backends.map((b) => ({ address: b.address })) }],
    });
    const client = echoClient(lb.listen);
    const spread = async (): Promise<Set<string>> => {
      const results = await Promise.all(Array.from({ length: 40 }, () => unary(client, { delayMs: 10 })));
      return new Set(results.map((r) => r.response!.backend));
    };
    try {
      await waitFor('all healthy', async () => (await backendsOf(lb)).every((x) => x.healthy));
      // Two of four unhealthy: 50% is not below the threshold, the survivors take everything.
      backends[0]!.setHealth('NOT_SERVING');
      backends[1]!.setHealth('NOT_SERVING');
      await waitFor('two unhealthy', async () => (await backendsOf(lb)).filter((x) => !x.healthy).length === 2, 3000);
      expect([...(await spread())].sort()).toEqual(['p3', 'p4']);
      // Three of four unhealthy: panic, calls go to all four.
      backends[2]!.setHealth('NOT_SERVING');
      await waitFor('panic', async () => (await lb.state()).pools[0]!.panic === true, 3000);
      expect((await spread()).size).toBe(4);
      expect(await lb.metrics()).toMatch(/switchboard_pool_panic\{pool="echo"\} 1/);
      expect(lb.logs.some((l) => l.includes('pool in panic mode'))).toBe(true);
      // Recovery ends it.
      backends.forEach((b) => b.setHealth('SERVING'));
      await waitFor('panic over', async () => (await lb.state()).pools[0]!.panic === false, 3000);
      expect(lb.logs.some((l) => l.includes('pool left panic mode'))).toBe(true);
    } finally {
      client.close();
      await lb.stop();
      await Promise.all(backends.map((b) => b.stop()));
    }
  });
});
