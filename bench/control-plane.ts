/**
 * Control-plane benchmarks:
 * - propagation: 5 balancers connected to one admin; 100 writes through the REST API, one at
 *   a time; for each, the time from the write's HTTP response (and from its request) to each
 *   balancer's "configuration applied" log line (both wall clocks of this machine, ms).
 * - admin latency: autocannon at a fixed 200 requests/s for a GET of a pool and for a PUT of a
 *   backend whose weight changes on every request (so every PUT commits a revision), each after
 *   2 s of unrecorded warm-up; /healthz alongside as the framework's floor.
 */
import autocannon from 'autocannon';
import * as hdr from 'hdr-histogram-js';
import { ADMIN_TOKEN, startAdmin } from '../test/support/admin';
import { killAll, sleep, startNode } from '../test/support/processes';

export interface PropagationResult {
  balancers: number;
  writes: number;
  fromResponse: { p50Ms: number; p99Ms: number; maxMs: number };
  fromRequest: { p50Ms: number; p99Ms: number; maxMs: number };
  /** Share of applications that happened before the HTTP response reached the client. */
  beforeResponse: number;
}

export interface AdminLatencyResult {
  route: string;
  rate: number;
  requests: number;
  non2xx: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** When a balancer's `logs` say it applied `revision` (ms, its clock), if they do yet. */
export function appliedAt(logs: string[], revision: number): number | undefined {
  for (let i = logs.length - 1; i >= 0; i--) {
    const line = logs[i]!;
    if (!line.includes('configuration applied')) continue;
    const o = JSON.parse(line) as { revision: number; time: number };
    if (o.revision === revision) return o.time;
  }
  return undefined;
}

const summary = (h: hdr.Histogram) => ({ p50Ms: h.getValueAtPercentile(50), p99Ms: h.getValueAtPercentile(99), maxMs: h.maxValue });

export async function propagationScenario(writes = 100, balancers = 5): Promise<PropagationResult> {
  const admin = await startAdmin();
  const nodes = await Promise.all(Array.from({ length: balancers }, (_, i) => startNode(admin.grpc, { nodeId: `bench-${i}`, token: ADMIN_TOKEN, statsIntervalMs: 5000 })));
  try {
    await admin.api('PUT', '/v1/config', { pools: [{ name: 'bench', match: { services: ['*'] }, backends: [{ address: '127.0.0.1:1' }, { address: '127.0.0.1:2' }] }] });
    await sleep(500);
    const fromResponse = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000, numberOfSignificantValueDigits: 3 });
    const fromRequest = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000, numberOfSignificantValueDigits: 3 });
    let before = 0;
    for (let i = 0; i < writes; i++) {
      const sent = Date.now();
      const res = await admin.api('PUT', '/v1/pools/bench/backends/127.0.0.1:1', { weight: 2 + (i % 500) });
      const received = Date.now();
      const revision = res.body.revision as number;
      for (const node of nodes) {
        let at: number | undefined;
        for (let t = 0; t < 2000 && (at = appliedAt(node.logs, revision)) === undefined; t++) await sleep(2);
        if (at === undefined) throw new Error(`revision ${revision} never applied on a balancer`);
        if (at < received) before++;
        fromResponse.recordValue(Math.max(0, at - received) + 1);
        fromRequest.recordValue(Math.max(0, at - sent) + 1);
      }
    }
    // +1 above keeps zero recordable; take it off again.
    const minus1 = (s: { p50Ms: number; p99Ms: number; maxMs: number }) => ({ p50Ms: s.p50Ms - 1, p99Ms: s.p99Ms - 1, maxMs: s.maxMs - 1 });
    return { balancers, writes, fromResponse: minus1(summary(fromResponse)), fromRequest: minus1(summary(fromRequest)), beforeResponse: before / (writes * balancers) };
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
    await admin.stop();
    killAll();
  }
}

export async function adminLatencyScenario(seconds = 10, rate = 200): Promise<AdminLatencyResult[]> {
  const admin = await startAdmin();
  try {
    await admin.api('PUT', '/v1/config', {
      pools: [{ name: 'bench', match: { services: ['*'] }, backends: Array.from({ length: 20 }, (_, i) => ({ address: `127.0.0.1:${10000 + i}` })) }],
    });
    const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };
    const run = (opts: autocannon.Options): Promise<autocannon.Result> => new Promise((resolve, reject) => autocannon(opts, (err, result) => (err ? reject(err) : resolve(result))));
    const out: AdminLatencyResult[] = [];
    const measure = async (route: string, opts: Partial<autocannon.Options>): Promise<void> => {
      // 2 s unrecorded first, so the figures are of a warm process (JIT, connection pools), not of its first second.
      await run({ url: admin.url, connections: 10, overallRate: rate, duration: 2, headers, ...opts } as autocannon.Options);
      const r = await run({ url: admin.url, connections: 10, overallRate: rate, duration: seconds, headers, ...opts } as autocannon.Options);
      out.push({ route, rate, requests: r.requests.total, non2xx: r.non2xx, p50Ms: r.latency.p50, p90Ms: r.latency.p90, p99Ms: r.latency.p99, maxMs: r.latency.max });
    };
    await measure('GET /healthz (no auth, no body: the floor)', { method: 'GET', url: `${admin.url}/healthz` });
    await measure('GET /v1/pools/bench', { method: 'GET', url: `${admin.url}/v1/pools/bench` });
    let weight = 0;
    await measure('PUT /v1/pools/bench/backends/{address} (a new revision each)', {
      method: 'PUT',
      url: `${admin.url}/v1/pools/bench/backends/127.0.0.1:10000`,
      requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, body: JSON.stringify({ weight: 1 + (weight++ % 1000) }) }) }],
    });
    return out;
  } finally {
    await admin.stop();
  }
}
