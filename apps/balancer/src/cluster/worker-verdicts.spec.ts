/** A worker's verdicts without processes: the primary's word applied to Backends, outcomes run-length coded. */
import { describe, expect, it } from '@jest/globals';
import { configSchema } from '#config';
import { buildRuntime, Runtime } from '../config/runtime';
import { DEFAULT_UPSTREAM_OPTIONS } from '../upstream/upstream-sessions';
import type { OutcomeRuns } from './messages';
import { WorkerVerdicts } from './worker-verdicts';

function runtimeOf(config: unknown): Runtime {
  return buildRuntime(configSchema.parse(config), 1, Runtime.empty(), DEFAULT_UPSTREAM_OPTIONS).runtime;
}

const CONFIG = {
  healthPolicies: [{ name: 'hc', active: { protocol: 'tcp', intervalMs: 1000, timeoutMs: 500, healthyThreshold: 1, unhealthyThreshold: 1 }, passive: { consecutiveFailures: 3, baseEjectionMs: 1000, maxEjectionPercent: 50 } }],
  pools: [
    { name: 'checked', match: { services: ['a.A'] }, healthPolicy: 'hc', backends: [{ address: '127.0.0.1:1' }, { address: '127.0.0.1:2' }] },
    { name: 'plain', match: { services: ['*'] }, backends: [{ address: '127.0.0.1:3' }] },
  ],
};

describe('WorkerVerdicts', () => {
  it('serves the primary\'s verdicts; a backend it has not judged is unhealthy only under active checks', () => {
    const v = new WorkerVerdicts(() => {});
    const rt = runtimeOf(CONFIG);
    v.setAll([['checked', '127.0.0.1:1', true, false]]);
    v.sync(rt);
    const [b1, b2] = rt.pools.get('checked')!.backends;
    const [b3] = rt.pools.get('plain')!.backends;
    expect([b1!.healthy, b2!.healthy, b3!.healthy]).toEqual([true, false, true]);
    v.update(['checked', '127.0.0.1:2', true, false]);
    v.update(['checked', '127.0.0.1:1', true, true]);
    expect([b1!.available, b2!.available]).toEqual([false, true]);
    expect(b1!.ejected).toBe(true);
    v.update(['checked', '127.0.0.1:1', true, false]);
    expect(b1!.ejected).toBe(false);
    // A verdict for a backend this worker does not have (another revision) changes nothing.
    v.update(['gone', '127.0.0.1:9', false, true]);
  });

  it('sends outcomes of passive pools only, in order and run-length coded, failures within the turn', async () => {
    const sent: OutcomeRuns[][] = [];
    const v = new WorkerVerdicts((runs) => sent.push(runs), 20);
    const rt = runtimeOf(CONFIG);
    v.sync(rt);
    const checked = rt.pools.get('checked')!;
    const plain = rt.pools.get('plain')!;
    const b = checked.backends[0]!;
    for (const status of [0, 0, 1, 14, 14, 0, 14]) v.callEnded(checked, b, status);
    v.callEnded(plain, plain.backends[0]!, 14);
    await new Promise((r) => setImmediate(r));
    expect(sent).toEqual([[['checked', '127.0.0.1:1', [-3, 2, -1, 1]]]]);
    // Successes alone wait for the batch.
    v.callEnded(checked, b, 0);
    await new Promise((r) => setImmediate(r));
    expect(sent).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 40));
    expect(sent[1]).toEqual([['checked', '127.0.0.1:1', [-1]]]);
  });
});
