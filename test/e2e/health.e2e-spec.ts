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
