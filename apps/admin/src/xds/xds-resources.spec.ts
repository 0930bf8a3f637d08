import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { validateConfig, type SwitchboardConfig } from '#config';
import { unpackAny } from './envoy-types';
import { xdsResources, type FleetHealth } from './xds-resources';

const config = (raw: unknown): SwitchboardConfig => {
  const r = validateConfig(raw);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config;
};
const decoded = (res: ReturnType<typeof xdsResources>, kind: keyof ReturnType<typeof xdsResources>, name: string): any => unpackAny(res[kind].get(name)!.any);
const none: FleetHealth = new Map();

describe('xdsResources', () => {
  const base = config({
    healthPolicies: [{ name: 'hp', passive: { consecutiveFailures: 7, baseEjectionMs: 2000, maxEjectionPercent: 30 } }],
    pools: [
      { name: 'lc', algorithm: 'least_conn', healthPolicy: 'hp', retry: { maxAttempts: 4, initialBackoffMs: 20, maxBackoffMs: 300, retryableStatusCodes: ['UNAVAILABLE', 'ABORTED', 'RESOURCE_EXHAUSTED'] }, defaultTimeoutMs: 1500, backends: [{ address: '127.0.0.1:1' }, { address: '127.0.0.2:1', drain: true }] },
      { name: 'rr', algorithm: 'round_robin', backends: [{ address: '[::1]:2' }] },
      { name: 'wt', algorithm: 'weighted_round_robin', backends: [{ address: '127.0.0.1:3', weight: 3 }, { address: '127.0.0.2:3', weight: 1 }] },
    ],
    routes: [
      {
        name: 'split',
        hostnames: ['api.example.test'],
        rules: [
          { backends: [{ pool: 'lc', weight: 90 }, { pool: 'rr', weight: 10 }, { pool: 'wt', weight: 0 }] },
          { matches: [{ method: { service: 'pkg.Svc' } }], backends: [{ pool: 'rr' }], timeoutMs: 250, requestHeaders: { set: { 'x-a': '1' }, add: { 'x-b': '2' }, remove: ['x-c'] } },
          { matches: [{ method: { service: 'pkg.Svc', method: 'Get' }, headers: [{ name: 'x-canary', value: 'yes' }] }], backends: [{ pool: 'wt' }] },
        ],
      },
    ],
  });

  it('a listener per pool and route: an API listener taking RDS over ADS, the router filter last', () => {
    const r = xdsResources(base, none);
    expect([...r.listener.keys()].sort()).toEqual(['lc', 'rr', 'split', 'wt']);
    const l = decoded(r, 'listener', 'split');
    const hcm = unpackAny(l.api_listener.api_listener) as any;
    expect(hcm.rds.route_config_name).toBe('split');
    expect(hcm.rds.config_source.ads).toEqual({});
    expect(hcm.http_filters.at(-1).typed_config.type_url).toBe('type.googleapis.com/envoy.extensions.filters.http.router.v3.Router');
  });

  it('CDS: least_conn asks for LEAST_REQUEST (2 choices) with a round_robin fallback; round_robin is ROUND_ROBIN; passive health is outlier detection', () => {
    const r = xdsResources(base, none);
    const lc = decoded(r, 'cluster', 'lc');
    expect(lc.type).toBe('EDS');
    expect(lc.eds_cluster_config.service_name).toBe('lc');
    expect(lc.lb_policy).toBe('LEAST_REQUEST');
    expect(lc.least_request_lb_config.choice_count.value).toBe(2);
    expect(lc.load_balancing_policy.policies.map((p: any) => p.typed_extension_config.typed_config.type_url)).toEqual([
      'type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest',
      'type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin',
    ]);
    expect(lc.outlier_detection.consecutive_5xx.value).toBe(7);
    expect(lc.outlier_detection.base_ejection_time.seconds).toBe('2');
    expect(lc.outlier_detection.max_ejection_percent.value).toBe(30);
    expect(lc.outlier_detection.failure_percentage_request_volume.value).toBe(7);
    expect(decoded(r, 'cluster', 'rr').lb_policy ?? 'ROUND_ROBIN').toBe('ROUND_ROBIN');
    expect(decoded(r, 'cluster', 'rr').outlier_detection).toBeUndefined();
  });

  it('EDS: health from the balancers and drains; unequal weights get a weighted locality per backend', () => {
    const fleet: FleetHealth = new Map([['lc', new Map([['127.0.0.1:1', { healthy: false, source: 'static' as const }]])]]);
    const r = xdsResources(base, fleet);
    const lc = decoded(r, 'endpoint', 'lc');
    expect(lc.endpoints).toHaveLength(1);
    expect(lc.endpoints[0].lb_endpoints.map((e: any) => [e.endpoint.address.socket_address.address, e.health_status])).toEqual([
      ['127.0.0.1', 'UNHEALTHY'],
      ['127.0.0.2', 'DRAINING'],
    ]);
    // Nobody reports it: UNKNOWN, which gRPC clients use.
    expect(decoded(xdsResources(base, none), 'endpoint', 'lc').endpoints[0].lb_endpoints[0].health_status ?? 'UNKNOWN').toBe('UNKNOWN');
    expect(decoded(r, 'endpoint', 'rr').endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toMatchObject({ address: '::1', port_value: 2 });
    const wt = decoded(r, 'endpoint', 'wt');
    expect(wt.endpoints.map((l: any) => l.load_balancing_weight.value)).toEqual([3, 1]);
    expect(new Set(wt.endpoints.map((l: any) => l.locality.sub_zone)).size).toBe(2);
  });

  it('RDS: a route\'s rules in GRPCRoute precedence, weighted clusters without the 0-weight pool, deadlines, header edits and A44 retries', () => {
    const r = xdsResources(base, none);
    const vh = decoded(r, 'route', 'split').virtual_hosts[0];
    expect(vh.domains).toEqual(['api.example.test', 'split']);
    const routes = vh.routes;
    expect(routes.map((x: any) => x.match.path ?? x.match.prefix)).toEqual(['/pkg.Svc/Get', '/pkg.Svc/', '']);
    expect(routes[0].match.headers[0]).toMatchObject({ name: 'x-canary', string_match: { exact: 'yes' } });
    expect(routes[1].route.cluster).toBe('rr');
    expect(routes[1].route.max_stream_duration.max_stream_duration.nanos).toBe(250_000_000);
    expect(routes[1].request_headers_to_add.map((h: any) => [h.header.key, h.append_action ?? 'APPEND_IF_EXISTS_OR_ADD'])).toEqual([
      ['x-a', 'OVERWRITE_IF_EXISTS_OR_ADD'],
      ['x-b', 'APPEND_IF_EXISTS_OR_ADD'],
    ]);
    expect(routes[1].request_headers_to_remove).toEqual(['x-c']);
    expect(routes[2].route.weighted_clusters.clusters.map((c: any) => [c.name, c.weight.value])).toEqual([
      ['lc', 90],
      ['rr', 10],
    ]);
    // The pools disagree on retries: none for the split; the pool's own route has its policy.
    expect(routes[2].route.retry_policy).toBeUndefined();
    const lcRoute = decoded(r, 'route', 'lc').virtual_hosts[0].routes[0].route;
    expect(lcRoute.retry_policy.retry_on).toBe('unavailable,resource-exhausted');
    expect(lcRoute.retry_policy.num_retries.value).toBe(3);
    expect(lcRoute.max_stream_duration.max_stream_duration.seconds).toBe('1');
  });

  it('a route named like a pool takes the listener; discovered backends come from the reports', () => {
    const c = config({
      pools: [{ name: 'dns', discovery: { dns: { name: 'svc.test', port: 50051 } }, drainAddresses: ['127.0.0.12:50051'] }],
      routes: [{ name: 'dns', rules: [{ backends: [{ pool: 'dns' }] }] }],
    });
    const fleet: FleetHealth = new Map([
      [
        'dns',
        new Map([
          ['127.0.0.11:50051', { healthy: true, source: 'dns' as const }],
          ['127.0.0.12:50051', { healthy: true, source: 'dns' as const }],
        ]),
      ],
    ]);
    const r = xdsResources(c, fleet);
    expect(r.listener.size).toBe(1);
    expect(decoded(r, 'route', 'dns').virtual_hosts[0].domains).toEqual(['*']);
    expect(decoded(r, 'endpoint', 'dns').endpoints[0].lb_endpoints.map((e: any) => e.health_status)).toEqual(['HEALTHY', 'DRAINING']);
  });

  it('versions: equal inputs give equal versions; a change to one pool changes only its resources', () => {
    const a = xdsResources(base, none);
    const b = xdsResources(base, none);
    for (const kind of ['listener', 'route', 'cluster', 'endpoint'] as const) for (const [name, res] of a[kind]) expect(b[kind].get(name)!.version).toBe(res.version);
    const changed = config({ ...base, pools: base.pools.map((p) => (p.name === 'rr' ? { ...p, algorithm: 'least_conn' } : p)) });
    const c = xdsResources(changed, none);
    expect(c.cluster.get('rr')!.version).not.toBe(a.cluster.get('rr')!.version);
    expect(c.cluster.get('lc')!.version).toBe(a.cluster.get('lc')!.version);
    expect(c.endpoint.get('rr')!.version).toBe(a.endpoint.get('rr')!.version);
  });

  it('any valid pool encodes (fast-check over algorithms, weights, drains and retries)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('least_conn', 'round_robin', 'weighted_round_robin', 'least_response_time', 'p2c'),
        fc.array(fc.record({ host: fc.integer({ min: 1, max: 254 }), weight: fc.integer({ min: 1, max: 1000 }), drain: fc.boolean() }), { maxLength: 20 }),
        fc.option(fc.integer({ min: 2, max: 5 })),
        (algorithm, backends, attempts) => {
          const unique = [...new Map(backends.map((b) => [b.host, b])).values()];
          const c = config({ pools: [{ name: 'p', algorithm, ...(attempts ? { retry: { maxAttempts: attempts } } : {}), backends: unique.map((b) => ({ address: `127.0.0.${b.host}:1`, weight: b.weight, drain: b.drain })) }] });
          const r = xdsResources(c, none);
          const eds = decoded(r, 'endpoint', 'p');
          const n = (eds.endpoints ?? []).reduce((s: number, l: any) => s + l.lb_endpoints.length, 0);
          expect(n).toBe(unique.length);
        },
      ),
      { numRuns: 200 },
    );
  });
});
