/**
 * The declarative Switchboard configuration: one schema for the YAML file a balancer reads,
 * the REST API's PUT /v1/config, `switchboard apply` and `export` (../shared/CONTRACT.md).
 *
 * Everything a balancer needs to run a pool is here and nothing else; listen addresses,
 * timeouts and other process settings are command-line flags. Objects are strict: an unknown
 * field is an error, not a silently ignored typo.
 */
import { z } from 'zod';
import { addressProblem } from './address';
import { discoverySchema } from './discovery-schema';
import { routeSchema } from './route-schema';
import { described, labels, name } from './schema-parts';
import { streamsSchema } from './streams-schema';
import { GRPC_FAILURE_CODE_NAMES } from './grpc-codes';

export const ALGORITHMS = ['least_conn', 'round_robin', 'weighted_round_robin', 'least_response_time', 'p2c'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/** A fully qualified gRPC service name such as helloworld.Greeter, or "*" for the default pool. */
const SERVICE = /^(\*|[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)$/;

export const activeHealthCheckSchema = z.strictObject({
  protocol: described(z.enum(['grpc', 'tcp']), 'grpc: grpc.health.v1.Health/Check; tcp: a TCP connect.', 'grpc').default('grpc'),
  service: described(z.string(), 'The service name sent in the health check request ("" = the whole server).', '').default(''),
  intervalMs: described(z.int().min(100).max(3_600_000), 'Time between checks of one backend, in ms (±10% jitter).', 2000).default(2000),
  timeoutMs: described(z.int().min(10).max(600_000), 'A check that takes longer fails, in ms.', 1000).default(1000),
  healthyThreshold: described(z.int().min(1).max(100), 'Consecutive successes that make an unhealthy backend healthy.', 2).default(2),
  unhealthyThreshold: described(z.int().min(1).max(100), 'Consecutive failures that make a healthy backend unhealthy.', 3).default(3),
});

export const passiveHealthCheckSchema = z.strictObject({
  consecutiveFailures: described(z.int().min(1).max(10_000), 'Calls in a row that end UNAVAILABLE (or unreachable) before the backend is ejected.', 5).default(5),
  baseEjectionMs: described(z.int().min(100).max(3_600_000), 'Ejection time in ms, multiplied by the number of ejections so far (at most 10x).', 30000).default(30_000),
  maxEjectionPercent: described(z.int().min(0).max(100), 'Never eject more than this share of a pool at once.', 50).default(50),
});

export const healthPolicySchema = z.strictObject({
  name: described(name, 'Unique name of the policy; pools refer to it by this name.', 'grpc-default'),
  active: described(activeHealthCheckSchema, 'Active checks: probe every backend at an interval.', { protocol: 'grpc', intervalMs: 2000 }).optional(),
  passive: described(passiveHealthCheckSchema, 'Passive outlier ejection from the outcomes of real calls.', { consecutiveFailures: 5 }).optional(),
  labels,
});

export const backendSchema = z.strictObject({
  address: z
    .string()
    .meta({ description: 'host:port of the backend; its key within the pool.', example: '127.0.0.1:50051' })
    .max(261, 'must be at most 261 characters')
    .check((ctx) => {
      const problem = addressProblem(ctx.value);
      if (problem !== null) ctx.issues.push({ code: 'custom', message: problem, input: ctx.value });
    }),
  weight: described(z.int().min(1).max(1000), 'Relative weight (weighted_round_robin, and the slow-start ramp).', 1).default(1),
  drain: described(z.boolean(), 'true: no new calls; calls in flight finish.', false).default(false),
  labels,
});

/** A path to a PEM file on the balancer's host: never the PEM itself (configs are stored in revisions and exported). */
const pemFile = (description: string, example: string) =>
  described(
    z
      .string()
      .min(1)
      .max(4096)
      .refine((p) => !p.includes('-----BEGIN') && !/[\r\n\0]/.test(p), 'must be the path of a PEM file on the balancer host, not PEM content'),
    description,
    example,
  );

export const upstreamTlsSchema = z
  .strictObject({
    caFile: pemFile('CA certificates (PEM) the backends\' certificates are verified against; default: the system roots.', '/etc/switchboard/backends-ca.pem').optional(),
    serverName: described(z.string().min(1).max(253).regex(/^[A-Za-z0-9.*-]+$/, 'must be a DNS name'), 'SNI sent to the backends and the name their certificate must carry; default: the backend\'s host.', 'greeter.internal').optional(),
    certFile: pemFile('Client certificate chain (PEM) presented to the backends (mTLS); with keyFile.', '/etc/switchboard/lb.pem').optional(),
    keyFile: pemFile('Private key (PEM) of certFile.', '/etc/switchboard/lb-key.pem').optional(),
  })
  .superRefine((t, ctx) => {
    if ((t.certFile === undefined) !== (t.keyFile === undefined)) {
      ctx.addIssue({ code: 'custom', path: [t.certFile === undefined ? 'certFile' : 'keyFile'], message: 'certFile and keyFile go together: give both or neither' });
    }
  });

/** gRPC status codes by name, as the metrics' `code` label writes them (OK is never a failure). */
const statusCodes = (description: string, example: string[]) =>
  described(
    z
      .array(z.enum(GRPC_FAILURE_CODE_NAMES))
      .max(16)
      .refine((codes) => new Set(codes).size === codes.length, 'must not list a status code twice'),
    description,
    example,
  );

/** A method as gRPC A6 names it: "pkg.Service/Method", "pkg.Service/*" or "*". */
const METHOD = /^(\*|[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\/(\*|[A-Za-z_][A-Za-z0-9_]*))$/;

export const retryPolicySchema = z
  .strictObject({
    maxAttempts: described(z.int().min(2).max(5), 'Attempts per call, the first included (gRPC A6 caps it at 5).', 3).default(3),
    initialBackoffMs: described(z.int().min(1).max(60_000), 'The first retry waits a random time up to this, in ms.', 25).default(25),
    maxBackoffMs: described(z.int().min(1).max(600_000), 'Longest backoff before a retry, in ms.', 250).default(250),
    backoffMultiplier: described(z.number().min(1).max(10), 'Each further retry may wait this many times longer.', 2).default(2),
    retryableStatusCodes: statusCodes('Statuses that make a call not yet committed to a response try again, on another backend when there is one.', ['UNAVAILABLE']).default(['UNAVAILABLE']),
  })
  .superRefine((r, ctx) => {
    if (r.maxBackoffMs < r.initialBackoffMs) ctx.addIssue({ code: 'custom', path: ['maxBackoffMs'], message: 'must be at least initialBackoffMs' });
    if (r.retryableStatusCodes.length === 0) ctx.addIssue({ code: 'custom', path: ['retryableStatusCodes'], message: 'must list at least one status code' });
  });

export const adaptiveHedgeDelaySchema = z.strictObject({
  percentile: described(z.number().min(50).max(99.9), 'Hedge after this percentile of the pool\'s recent time to response headers.', 95).default(95),
  minMs: described(z.int().min(1).max(60_000), 'Never hedge sooner than this, in ms.', 5).default(5),
});

export const hedgingPolicySchema = z.strictObject({
  maxAttempts: described(z.int().min(2).max(5), 'Attempts per call, the first included (gRPC A6 caps it at 5).', 2).default(2),
  delayMs: described(z.int().min(0).max(60_000), 'Fixed delay before each further attempt, in ms; with adaptiveDelay, the delay until the pool has enough samples.', 50).default(50),
  adaptiveDelay: described(adaptiveHedgeDelaySchema, 'Hedge after the pool\'s observed percentile of time to response headers instead of a fixed delay.', { percentile: 95, minMs: 5 }).optional(),
  nonFatalStatusCodes: statusCodes('Statuses that let the other attempts go on (and send the next one at once); any other status ends the call.', ['UNAVAILABLE']).default([]),
  methods: described(
    z
      .array(z.string().max(512).regex(METHOD, 'must be "pkg.Service/Method", "pkg.Service/*" or "*"'))
      .min(1)
      .max(256),
    'Idempotent methods that may be hedged; every other call of the pool follows `retry`.',
    ['*'],
  ).default(['*']),
});

export const retryBudgetSchema = z.strictObject({
  percent: described(z.number().min(0).max(100), 'Retries plus hedges may add at most this share of the pool\'s calls over a 10 s window.', 20).default(20),
  minPerSecond: described(z.int().min(0).max(100_000), 'Retries and hedges allowed per second whatever the traffic (a floor for quiet pools).', 10).default(10),
});

export const poolMatchSchema = z
  .strictObject({
    services: described(z.array(z.string().regex(SERVICE, 'must be a fully qualified gRPC service name (package.Service) or "*"')), 'Fully qualified gRPC service names routed to this pool; "*" makes it the default pool.', ['helloworld.Greeter']).optional(),
    authority: described(z.string().min(1).max(253), 'Route by the :authority (Host) of the call instead of, or with, its service.', 'greeter.internal').optional(),
  })
  .refine((m) => (m.services?.length ?? 0) > 0 || m.authority !== undefined, 'needs services or authority');

export const poolSchema = z.strictObject({
  name: described(name, 'Unique name of the pool (a-z, 0-9, "-"): its natural key.', 'greeter'),
  match: described(poolMatchSchema, 'Which calls this pool serves; absent: only the calls routes send it.', { services: ['helloworld.Greeter'] }).optional(),
  algorithm: described(z.enum(ALGORITHMS), 'How a backend is picked for each call (HTTP/2 stream).', 'least_conn').default('least_conn'),
  healthPolicy: described(name, 'Name of the health policy applied to the backends.', 'grpc-default').optional(),
  maxStreamsPerBackend: described(z.int().min(0).max(1_000_000), 'Most concurrent calls on one backend (0 = unlimited); beyond it calls queue.', 0).default(0),
  /** When every backend is at maxStreamsPerBackend, calls wait in a queue of at most this many... */
  maxQueuedCalls: described(z.int().min(0).max(100_000), 'Most calls waiting for a free backend when all are at maxStreamsPerBackend.', 1000).default(1000),
  /** ...for at most this long, then fail with RESOURCE_EXHAUSTED (0: fail at once). */
  queueTimeoutMs: described(z.int().min(0).max(600_000), 'Longest wait in that queue before RESOURCE_EXHAUSTED, in ms.', 1000).default(1000),
  /** A backend that joins the pool or returns to it ramps from 10% to full weight over this window (0: off). */
  slowStartMs: described(z.int().min(0).max(3_600_000), 'A joining backend ramps from 10% to full weight over this window, in ms (0 = off).', 0).default(0),
  /** Below this percentage of healthy backends the pool spreads calls over all of them (Envoy's healthy_panic_threshold); 0 turns panic mode off. */
  panicThreshold: described(z.int().min(0).max(100), 'Below this percentage of healthy backends calls spread over all of them (0 = never).', 50).default(50),
  /** A deadline for calls that carry none (no grpc-timeout), in ms; absent: such calls may run forever. */
  defaultTimeoutMs: described(z.int().min(1).max(86_400_000), 'Deadline for calls that carry none (no grpc-timeout), in ms: they end DEADLINE_EXCEEDED after it, and the backend is told it. Absent: no deadline.', 30_000).optional(),
  tls: described(upstreamTlsSchema, 'TLS (ALPN h2) to this pool\'s backends, verified; absent: cleartext HTTP/2.', { caFile: '/etc/switchboard/backends-ca.pem', serverName: 'greeter.internal' }).optional(),
  retry: described(retryPolicySchema, 'gRPC A6 retryPolicy for calls not yet committed to a response (no response headers forwarded).', { maxAttempts: 3, retryableStatusCodes: ['UNAVAILABLE'] }).optional(),
  hedging: described(hedgingPolicySchema, 'gRPC A6 hedgingPolicy for the listed idempotent methods: further attempts on other backends while no response headers came.', { maxAttempts: 2, delayMs: 50, methods: ['*'] }).optional(),
  retryBudget: described(retryBudgetSchema, 'Caps retries plus hedges (default with retry or hedging: 20% of calls plus 10 per second).', { percent: 20, minPerSecond: 10 }).optional(),
  labels,
  backends: described(z.array(backendSchema), 'The backends of the pool.', [{ address: '127.0.0.1:50051', weight: 1 }]).default([]),
  discovery: described(discoverySchema, 'Backends found by DNS beside the static `backends`: the pool serves both.', { dns: { name: 'greeter.default.svc.cluster.local', type: 'A', port: 50051 } }).optional(),
  streams: described(streamsSchema, 'Long-lived streams: rebalance after the pool changes, a maximum age, bounded drains.', { rebalance: { tolerancePercent: 20, maxPerSecond: 10, minAgeMs: 10000 }, maxAgeMs: 600000 }).optional(),
  drainAddresses: described(
    z.array(backendSchema.shape.address).max(1000).refine((a) => new Set(a).size === a.length, 'must not list an address twice'),
    'Discovered backends (host:port) that take no new calls; calls in flight finish. Static backends use `drain: true`.',
    ['127.0.0.12:50051'],
  ).optional(),
});

/** The shape of a config (or of one of several files that make one), without the checks across resources. */
export const configShapeSchema = z.strictObject({
  healthPolicies: described(z.array(healthPolicySchema), 'Health policies, referred to by pools.', []).default([]),
  pools: described(z.array(poolSchema), 'Pools of backends and the calls they serve.', []).default([]),
  routes: described(z.array(routeSchema).max(1000), 'Routes: calls by service, method and header to weighted pools (before the pools\' own match).', []).optional(),
});

/** A problem across resources (a duplicate name, an unknown reference, a route taken twice). */
export interface CrossIssue {
  path: (string | number)[];
  message: string;
}

/** The checks across resources of a config whose resources each passed their schema. */
export function crossResourceIssues(cfg: z.output<typeof configShapeSchema>): CrossIssue[] {
  const issues: CrossIssue[] = [];
  const policies = new Set<string>();
  cfg.healthPolicies.forEach((p, i) => {
    if (policies.has(p.name)) issues.push({ path: ['healthPolicies', i, 'name'], message: `duplicate health policy "${p.name}"` });
    policies.add(p.name);
  });
  const pools = new Set<string>();
  const routes = new Map<string, string>();
  cfg.pools.forEach((pool, i) => {
    if (pools.has(pool.name)) issues.push({ path: ['pools', i, 'name'], message: `duplicate pool "${pool.name}"` });
    pools.add(pool.name);
    if (pool.healthPolicy !== undefined && !policies.has(pool.healthPolicy)) {
      issues.push({ path: ['pools', i, 'healthPolicy'], message: `unknown health policy "${pool.healthPolicy}"` });
    }
    const match = pool.match;
    for (const [j, service] of (match === undefined ? [] : (match.services ?? ['*'])).entries()) {
      const key = `${service}@${match!.authority ?? ''}`;
      const other = routes.get(key);
      if (other !== undefined) {
        issues.push({
          path: ['pools', i, 'match', match!.services ? 'services' : 'authority', ...(match!.services ? [j] : [])],
          message: `"${service}"${match!.authority ? ` on ${match!.authority}` : ''} is already routed to pool "${other}"`,
        });
      }
      routes.set(key, pool.name);
    }
    const addresses = new Set<string>();
    pool.backends.forEach((b, j) => {
      if (addresses.has(b.address)) issues.push({ path: ['pools', i, 'backends', j, 'address'], message: `duplicate backend "${b.address}" in pool "${pool.name}"` });
      addresses.add(b.address);
    });
  });
  const routeNames = new Set<string>();
  (cfg.routes ?? []).forEach((r, i) => {
    if (routeNames.has(r.name)) issues.push({ path: ['routes', i, 'name'], message: `duplicate route "${r.name}"` });
    routeNames.add(r.name);
    r.rules.forEach((rule, j) => {
      rule.backends.forEach((b, k) => {
        if (!pools.has(b.pool)) issues.push({ path: ['routes', i, 'rules', j, 'backends', k, 'pool'], message: `unknown pool "${b.pool}"` });
      });
      if (rule.mirror !== undefined && !pools.has(rule.mirror.pool)) issues.push({ path: ['routes', i, 'rules', j, 'mirror', 'pool'], message: `unknown pool "${rule.mirror.pool}"` });
    });
  });
  return issues;
}

export const configSchema = configShapeSchema.superRefine((cfg, ctx) => {
  for (const issue of crossResourceIssues(cfg)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
});

export type SwitchboardConfig = z.output<typeof configSchema>;
export type SwitchboardConfigInput = z.input<typeof configSchema>;
export type PoolConfig = z.output<typeof poolSchema>;
export type BackendConfig = z.output<typeof backendSchema>;
export type HealthPolicyConfig = z.output<typeof healthPolicySchema>;
export type UpstreamTlsConfig = z.output<typeof upstreamTlsSchema>;
export type RetryPolicyConfig = z.output<typeof retryPolicySchema>;
export type HedgingPolicyConfig = z.output<typeof hedgingPolicySchema>;
export type RetryBudgetConfig = z.output<typeof retryBudgetSchema>;
