import { describe, expect, it } from '@jest/globals';
import type { StatsReport } from '#proto';
import type { NodesService } from './nodes.service';
import { StatsService } from './stats.service';

const report = (atMs: number, calls: Record<string, number>): StatsReport =>
  ({
    atMs,
    appliedRevision: 3,
    pools: [
      {
        name: 'p',
        panic: false,
        backends: Object.entries(calls).map(([address, ok]) => ({ address, activeStreams: 1, callsByCode: { OK: ok, UNAVAILABLE: 1 }, p50Ms: 1, p90Ms: 2, p99Ms: 3, healthy: true, ejected: false, draining: false })),
      },
    ],
  }) as unknown as StatsReport;

describe('StatsService', () => {
  it('rates each backend against its own figures in the previous report, found by pool and address', () => {
    const many: Record<string, number> = {};
    for (let i = 0; i < 2000; i++) many[`127.0.0.1:${20000 + i}`] = i;
    const later: Record<string, number> = Object.fromEntries(Object.entries(many).map(([a, n]) => [a, n + 10 * (Number(a.split(':')[1]) % 7)]));
    later['127.0.0.1:1'] = 5; // new: no previous figures
    const nodes = { latestReports: () => [{ nodeId: 'edge-1', receivedAt: 0, report: report(3000, later), previous: report(1000, many) }] } as unknown as NodesService;
    const view = new StatsService(nodes).view();
    const byAddress = new Map(view.pools[0]!.backends.map((b) => [b.address, b]));
    for (const [address] of Object.entries(many)) expect(byAddress.get(address)!.callsPerSecond).toBe((10 * (Number(address.split(':')[1]) % 7)) / 2);
    expect(byAddress.get('127.0.0.1:1')!.callsPerSecond).toBe(0);
    expect(byAddress.get('127.0.0.1:20001')!.errors).toBe(1);
  });
});
