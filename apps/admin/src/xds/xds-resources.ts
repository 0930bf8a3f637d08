/**
 * The config as xDS resources for proxyless gRPC clients (issue 25): a pure function of the
 * config and of what the balancers report of the backends.
 *
 * - LDS: a Listener per pool and per route, named after it (`xds:///greeter`), holding an API
 *   listener whose HttpConnectionManager takes its routes from RDS, the router filter last.
 *   A route named like a pool takes the name (as it takes the pool's calls on the balancer).
 * - RDS: a RouteConfiguration of the same name. A pool's has one route to its cluster; a route's
 *   has one virtual host (its hostnames and its own name, or every host) whose routes are its
 *   rules' matches in GRPCRoute precedence (longest service, then method, then most headers:
 *   gRPC takes the first route that matches), each to weighted clusters, with the header edits.
 *   Deadlines (timeoutMs, defaultTimeoutMs) become max_stream_duration; `retry` becomes the
 *   route's retry_policy (gRPC A44), for the status codes A44 knows.
 * - CDS: a Cluster per pool, its endpoints from EDS. least_conn, p2c and least_response_time ask
 *   for LEAST_REQUEST with 2 choices (A48), round_robin for ROUND_ROBIN, with a fallback to
 *   round_robin for a client without least_request (grpc-js); a pool whose weights differ puts
 *   each backend in a locality of its own, weighted, so round robin over localities gives the
 *   weights (gRPC clients ignore endpoint weights under round_robin). The pool's passive health
 *   policy becomes outlier_detection (A50: failure percentage over the interval).
 * - EDS: a ClusterLoadAssignment per pool: its static backends and the ones the balancers found
 *   by DNS, HEALTHY unless drained (DRAINING) or seen unhealthy by every balancer that reports it
 *   (UNHEALTHY); UNKNOWN when no balancer reports the backend (gRPC clients use UNKNOWN ones).
 */
import { createHash } from 'node:crypto';
import type { PoolConfig, RouteConfig, SwitchboardConfig } from '#config';
import { packAny, type AnyMessage, type XdsKind } from './envoy-types';

/** What the balancers report of one backend of a pool. */
export interface ReportedBackend {
  /** Healthy on at least one reporting balancer. */
  healthy: boolean;
  source: 'static' | 'dns';
}

/** Per pool, per address: the balancers' view (absent: nobody reports it). */
export type FleetHealth = ReadonlyMap<string, ReadonlyMap<string, ReportedBackend>>;

export interface XdsResource {
  any: AnyMessage;
  /** A digest of the encoded resource: equal digests, equal resources. */
  version: string;
}

export type XdsResources = Record<XdsKind, Map<string, XdsResource>>;

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const LEAST_REQUEST_CODES = new Set(['least_conn', 'p2c', 'least_response_time']);
/** The status codes gRPC A44 retries on, as retry_on names them. */
const A44_CODES: Record<string, string> = { CANCELLED: 'cancelled', DEADLINE_EXCEEDED: 'deadline-exceeded', INTERNAL: 'internal', RESOURCE_EXHAUSTED: 'resource-exhausted', UNAVAILABLE: 'unavailable' };

const duration = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 });
const resource = (any: AnyMessage): XdsResource => ({ any, version: createHash('sha256').update(any.value).digest('hex').slice(0, 16) });

export function xdsResources(config: SwitchboardConfig, fleet: FleetHealth): XdsResources {
  const out: XdsResources = { listener: new Map(), route: new Map(), cluster: new Map(), endpoint: new Map() };
  const listenerNames = new Map<string, () => Record<string, unknown>>();
  for (const pool of config.pools) listenerNames.set(pool.name, () => poolRouteConfig(pool));
  for (const route of config.routes ?? []) listenerNames.set(route.name, () => routeRouteConfig(route, config.pools));
  for (const [name, routeConfig] of listenerNames) {
    out.listener.set(name, resource(listener(name)));
    out.route.set(name, resource(packAny('envoy.config.route.v3.RouteConfiguration', routeConfig())));
  }
  const policies = new Map(config.healthPolicies.map((p) => [p.name, p]));
  for (const pool of config.pools) {
    const passive = pool.healthPolicy !== undefined ? policies.get(pool.healthPolicy)?.passive : undefined;
    const endpoints = poolEndpoints(pool, fleet.get(pool.name));
    const perBackendLocality = new Set(endpoints.map((e) => e.weight)).size > 1;
    out.cluster.set(pool.name, resource(cluster(pool, passive, perBackendLocality)));
    out.endpoint.set(pool.name, resource(loadAssignment(pool.name, endpoints, perBackendLocality)));
  }
  return out;
}

function listener(name: string): AnyMessage {
  const hcm = packAny(HCM, {
    rds: { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: name },
    http_filters: [{ name: 'envoy.filters.http.router', typed_config: packAny('envoy.extensions.filters.http.router.v3.Router', {}) }],
  });
  return packAny('envoy.config.listener.v3.Listener', { name, api_listener: { api_listener: hcm } });
}

function retryPolicy(pool: PoolConfig | undefined): Record<string, unknown> | undefined {
  const retry = pool?.retry;
  if (retry === undefined) return undefined;
  const on = retry.retryableStatusCodes.map((c) => A44_CODES[c]).filter((c): c is string => c !== undefined);
  if (on.length === 0) return undefined;
  return {
    retry_on: on.join(','),
    num_retries: { value: retry.maxAttempts - 1 },
    retry_back_off: { base_interval: duration(retry.initialBackoffMs), max_interval: duration(retry.maxBackoffMs) },
  };
}

function action(clusters: { pool: PoolConfig; weight: number }[], timeoutMs: number | undefined): Record<string, unknown> {
  const live = clusters.filter((c) => c.weight > 0);
  const deadline = timeoutMs ?? (live.length === 1 ? live[0]!.pool.defaultTimeoutMs : undefined);
  // One retry policy per route: the pools' own, when the rule's pools agree on it.
  const policies = live.map((c) => JSON.stringify(retryPolicy(c.pool) ?? null));
  const retry = policies.every((p) => p === policies[0]) ? retryPolicy(live[0]?.pool) : undefined;
  return {
    ...(live.length === 1 ? { cluster: live[0]!.pool.name } : { weighted_clusters: { clusters: live.map((c) => ({ name: c.pool.name, weight: { value: c.weight } })) } }),
    ...(deadline !== undefined ? { max_stream_duration: { max_stream_duration: duration(deadline) } } : {}),
    ...(retry !== undefined ? { retry_policy: retry } : {}),
  };
}

function poolRouteConfig(pool: PoolConfig): Record<string, unknown> {
  return {
    name: pool.name,
    virtual_hosts: [{ name: pool.name, domains: ['*'], routes: [{ name: 'all', match: { prefix: '' }, route: action([{ pool, weight: 1 }], undefined) }] }],
  };
}

function routeRouteConfig(route: RouteConfig, pools: readonly PoolConfig[]): Record<string, unknown> {
  const byName = new Map(pools.map((p) => [p.name, p]));
  const entries: { key: number[]; order: number; route: Record<string, unknown> }[] = [];
  route.rules.forEach((rule, r) => {
    const clusters = rule.backends.flatMap((b) => (byName.has(b.pool) ? [{ pool: byName.get(b.pool)!, weight: b.weight }] : []));
    const edits = rule.requestHeaders;
    const headerEdits = {
      ...(edits?.set || edits?.add
        ? {
            request_headers_to_add: [
              ...Object.entries(edits.set ?? {}).map(([key, value]) => ({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
              ...Object.entries(edits.add ?? {}).map(([key, value]) => ({ header: { key, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' })),
            ],
          }
        : {}),
      ...(edits?.remove ? { request_headers_to_remove: edits.remove } : {}),
    };
    const matches = rule.matches.length > 0 ? rule.matches : [{}];
    matches.forEach((m, i) => {
      const service = m.method?.service ?? '';
      const method = m.method?.method ?? '';
      const headers = (m.headers ?? []).map((h) => ({ name: h.name, string_match: { exact: h.value } }));
      const path = service === '' ? { prefix: '' } : method === '' ? { prefix: `/${service}/` } : { path: `/${service}/${method}` };
      entries.push({
        key: [service.length, method.length, headers.length],
        order: entries.length,
        route: { name: `rule-${r}-match-${i}`, match: { ...path, ...(headers.length > 0 ? { headers } : {}) }, route: action(clusters, rule.timeoutMs), ...headerEdits },
      });
    });
  });
  // gRPC takes the first route that matches: the most specific first, then file order.
  entries.sort((a, b) => {
    for (let i = 0; i < a.key.length; i++) if (a.key[i] !== b.key[i]) return b.key[i]! - a.key[i]!;
    return a.order - b.order;
  });
  const domains = route.hostnames.length === 0 ? ['*'] : [...route.hostnames, route.name];
  return { name: route.name, virtual_hosts: [{ name: route.name, domains, routes: entries.map((e) => e.route) }] };
}

function cluster(pool: PoolConfig, passive: { consecutiveFailures: number; baseEjectionMs: number; maxEjectionPercent: number } | undefined, perBackendLocality: boolean): AnyMessage {
  const roundRobin = { typed_extension_config: { name: 'envoy.load_balancing_policies.round_robin', typed_config: packAny('envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin', {}) } };
  const leastRequest = !perBackendLocality && LEAST_REQUEST_CODES.has(pool.algorithm);
  const lb = leastRequest
    ? {
        lb_policy: 'LEAST_REQUEST',
        least_request_lb_config: { choice_count: { value: 2 } },
        load_balancing_policy: {
          policies: [
            { typed_extension_config: { name: 'envoy.load_balancing_policies.least_request', typed_config: packAny('envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest', { choice_count: { value: 2 } }) } },
            roundRobin,
          ],
        },
      }
    : { lb_policy: 'ROUND_ROBIN' };
  const outlier = passive
    ? {
        outlier_detection: {
          consecutive_5xx: { value: passive.consecutiveFailures },
          interval: duration(10_000),
          base_ejection_time: duration(passive.baseEjectionMs),
          max_ejection_time: duration(passive.baseEjectionMs * 10),
          max_ejection_percent: { value: passive.maxEjectionPercent },
          enforcing_success_rate: { value: 0 },
          failure_percentage_threshold: { value: 50 },
          enforcing_failure_percentage: { value: 100 },
          failure_percentage_minimum_hosts: { value: 1 },
          failure_percentage_request_volume: { value: passive.consecutiveFailures },
        },
      }
    : {};
  return packAny('envoy.config.cluster.v3.Cluster', {
    name: pool.name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' }, service_name: pool.name },
    connect_timeout: duration(5_000),
    ...lb,
    ...outlier,
  });
}

interface Endpoint {
  host: string;
  port: number;
  address: string;
  weight: number;
  health: 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'UNKNOWN';
}

function poolEndpoints(pool: PoolConfig, reported: ReadonlyMap<string, ReportedBackend> | undefined): Endpoint[] {
  const drained = new Set(pool.drainAddresses ?? []);
  const out: Endpoint[] = [];
  const add = (address: string, weight: number, drain: boolean): void => {
    const hp = splitAddress(address);
    if (hp === null) return;
    const seen = reported?.get(address);
    out.push({ ...hp, address, weight, health: drain ? 'DRAINING' : seen === undefined ? 'UNKNOWN' : seen.healthy ? 'HEALTHY' : 'UNHEALTHY' });
  };
  for (const b of pool.backends) add(b.address, b.weight, b.drain);
  if (pool.discovery !== undefined && reported !== undefined) {
    const statics = new Set(pool.backends.map((b) => b.address));
    for (const [address, r] of [...reported].sort(([a], [b]) => (a < b ? -1 : 1))) if (r.source === 'dns' && !statics.has(address)) add(address, 1, drained.has(address));
  }
  return out;
}

/** host:port or [v6]:port. A host name is passed as it is (gRPC clients want IP addresses and NACK it, which /v1/nodes then shows). */
function splitAddress(address: string): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  if (m === null) return null;
  return { host: m[1]!, port: Number(m[2]) };
}

function loadAssignment(name: string, endpoints: Endpoint[], perBackendLocality: boolean): AnyMessage {
  const lbEndpoint = (e: Endpoint) => ({
    endpoint: { address: { socket_address: { address: e.host, port_value: e.port } } },
    health_status: e.health,
    load_balancing_weight: { value: e.weight },
  });
  const localities = perBackendLocality
    ? endpoints.map((e) => ({ locality: { region: 'switchboard', zone: name, sub_zone: e.address }, load_balancing_weight: { value: e.weight }, lb_endpoints: [lbEndpoint(e)] }))
    : endpoints.length === 0
      ? []
      : [{ locality: { region: 'switchboard', zone: name }, load_balancing_weight: { value: endpoints.reduce((s, e) => s + e.weight, 0) }, lb_endpoints: endpoints.map(lbEndpoint) }];
  return packAny('envoy.config.endpoint.v3.ClusterLoadAssignment', { cluster_name: name, endpoints: localities });
}
