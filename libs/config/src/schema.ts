/**
 * The declarative Switchboard configuration: one schema for the YAML file a balancer reads,
 * the REST API's PUT /v1/config, `switchboard apply` and `export` (../shared/CONTRACT.md).
 *
 * Everything a balancer needs to run a pool is here and nothing else; listen addresses,
 * timeouts and other process settings are command-line flags. Objects are strict: an unknown
 * field is an error, not a silently ignored typo.
 */
import { z } from 'zod';

export const ALGORITHMS = ['least_conn', 'round_robin', 'weighted_round_robin', 'least_response_time', 'p2c'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** host:port where host is a name, an IPv4 address or a bracketed IPv6 address. */
const ADDRESS = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;
/** A fully qualified gRPC service name such as helloworld.Greeter, or "*" for the default pool. */
const SERVICE = /^(\*|[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)$/;

const name = z.string().regex(NAME, 'must be 1-63 characters of a-z, 0-9 and "-", starting and ending with a letter or digit');
const labels = z.record(z.string().min(1).max(63), z.string().max(253)).optional();

export const activeHealthCheckSchema = z.strictObject({
  protocol: z.enum(['grpc', 'tcp']).default('grpc'),
  service: z.string().default(''),
  intervalMs: z.int().min(100).max(3_600_000).default(2000),
  timeoutMs: z.int().min(10).max(600_000).default(1000),
  healthyThreshold: z.int().min(1).max(100).default(2),
  unhealthyThreshold: z.int().min(1).max(100).default(3),
});

export const passiveHealthCheckSchema = z.strictObject({
  consecutiveFailures: z.int().min(1).max(10_000).default(5),
  baseEjectionMs: z.int().min(100).max(3_600_000).default(30_000),
  maxEjectionPercent: z.int().min(0).max(100).default(50),
});

export const healthPolicySchema = z.strictObject({
  name,
  active: activeHealthCheckSchema.optional(),
  passive: passiveHealthCheckSchema.optional(),
});

export const backendSchema = z.strictObject({
  address: z
    .string()
    .regex(ADDRESS, 'must be host:port, e.g. 127.0.0.1:50051')
    .refine((a) => {
      const port = Number(a.slice(a.lastIndexOf(':') + 1));
      return port >= 1 && port <= 65535;
    }, 'port must be 1-65535'),
  weight: z.int().min(1).max(1000).default(1),
  drain: z.boolean().default(false),
  labels,
});

export const poolMatchSchema = z
  .strictObject({
    services: z.array(z.string().regex(SERVICE, 'must be a fully qualified gRPC service name (package.Service) or "*"')).optional(),
    authority: z.string().min(1).max(253).optional(),
  })
  .refine((m) => (m.services?.length ?? 0) > 0 || m.authority !== undefined, 'needs services or authority');

export const poolSchema = z.strictObject({
  name,
  match: poolMatchSchema,
  algorithm: z.enum(ALGORITHMS).default('least_conn'),
  healthPolicy: name.optional(),
  maxStreamsPerBackend: z.int().min(0).max(1_000_000).default(0),
  /** When every backend is at maxStreamsPerBackend, calls wait in a queue of at most this many... */
  maxQueuedCalls: z.int().min(0).max(100_000).default(1000),
  /** ...for at most this long, then fail with RESOURCE_EXHAUSTED (0: fail at once). */
  queueTimeoutMs: z.int().min(0).max(600_000).default(1000),
  /** A backend that joins the pool or returns to it ramps from 10% to full weight over this window (0: off). */
  slowStartMs: z.int().min(0).max(3_600_000).default(0),
  /** Below this percentage of healthy backends the pool spreads calls over all of them (Envoy's healthy_panic_threshold); 0 turns panic mode off. */
  panicThreshold: z.int().min(0).max(100).default(50),
  labels,
  backends: z.array(backendSchema).default([]),
});

export const configSchema = z
  .strictObject({
    healthPolicies: z.array(healthPolicySchema).default([]),
    pools: z.array(poolSchema).default([]),
  })
  .superRefine((cfg, ctx) => {
    const policies = new Set<string>();
    cfg.healthPolicies.forEach((p, i) => {
      if (policies.has(p.name)) ctx.addIssue({ code: 'custom', path: ['healthPolicies', i, 'name'], message: `duplicate health policy "${p.name}"` });
      policies.add(p.name);
    });
    const pools = new Set<string>();
    const routes = new Map<string, string>();
    cfg.pools.forEach((pool, i) => {
      if (pools.has(pool.name)) ctx.addIssue({ code: 'custom', path: ['pools', i, 'name'], message: `duplicate pool "${pool.name}"` });
      pools.add(pool.name);
      if (pool.healthPolicy !== undefined && !policies.has(pool.healthPolicy)) {
        ctx.addIssue({ code: 'custom', path: ['pools', i, 'healthPolicy'], message: `unknown health policy "${pool.healthPolicy}"` });
      }
      for (const [j, service] of (pool.match.services ?? ['*']).entries()) {
        const key = `${service}@${pool.match.authority ?? ''}`;
        const other = routes.get(key);
        if (other !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['pools', i, 'match', pool.match.services ? 'services' : 'authority', ...(pool.match.services ? [j] : [])],
            message: `"${service}"${pool.match.authority ? ` on ${pool.match.authority}` : ''} is already routed to pool "${other}"`,
          });
        }
        routes.set(key, pool.name);
      }
      const addresses = new Set<string>();
      pool.backends.forEach((b, j) => {
        if (addresses.has(b.address)) ctx.addIssue({ code: 'custom', path: ['pools', i, 'backends', j, 'address'], message: `duplicate backend "${b.address}" in pool "${pool.name}"` });
        addresses.add(b.address);
      });
    });
  });

export type SwitchboardConfig = z.output<typeof configSchema>;
export type SwitchboardConfigInput = z.input<typeof configSchema>;
export type PoolConfig = z.output<typeof poolSchema>;
export type BackendConfig = z.output<typeof backendSchema>;
export type HealthPolicyConfig = z.output<typeof healthPolicySchema>;
