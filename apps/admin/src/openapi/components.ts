/**
 * The OpenAPI components, generated from the same zod schemas that validate requests (and that
 * the balancer uses for its config), so the document cannot drift from what the API accepts.
 * Response-only shapes (plans, revisions, problems, tokens, nodes) get zod schemas here, for
 * the document alone.
 */
import { z } from 'zod';
import { backendSchema, configSchema, healthPolicySchema, poolSchema, routeSchema } from '#config';
import { SCOPES } from '../auth/scopes';

const d = <T extends z.ZodType>(schema: T, description: string, example?: unknown): T => schema.meta(example === undefined ? { description } : { description, example });

export const fieldChangeSchema = z.object({
  path: d(z.string(), 'Dotted path of the field within the resource.', 'weight'),
  before: d(z.unknown(), 'Value before (null: absent).', 1),
  after: d(z.unknown(), 'Value after (null: absent).', 3),
});

export const changeSchema = z.object({
  action: d(z.enum(['create', 'update', 'delete']), 'What happens to the resource.', 'update'),
  kind: d(z.enum(['healthPolicy', 'pool', 'backend']), 'The kind of resource.', 'backend'),
  name: d(z.string(), 'Its key: a policy or pool name, or a backend address.', '127.0.0.1:50051'),
  pool: d(z.string(), 'For backends: the pool they belong to.', 'greeter').optional(),
  fields: d(z.array(fieldChangeSchema), 'Field-level changes (all fields for create and delete).', [{ path: 'weight', before: 1, after: 3 }]),
});

const EXAMPLE_CHANGES = [{ action: 'update', kind: 'backend', name: '127.0.0.1:50051', pool: 'greeter', fields: [{ path: 'weight', before: 1, after: 3 }] }];

export const planSchema = z.object({ changes: d(z.array(changeSchema), 'The changes; empty when there is nothing to do.', EXAMPLE_CHANGES) });

export const applyResultSchema = z.object({
  revision: d(z.int(), 'The revision now current (unchanged when nothing changed).', 8),
  changed: d(z.boolean(), 'false when the config was already as desired (no revision made).', true),
  changes: d(z.array(changeSchema), 'What changed.', EXAMPLE_CHANGES),
});

export const revisionSummarySchema = z.object({
  number: d(z.int(), 'Revision number, from 1.', 7),
  createdAt: d(z.string(), 'When it was committed (ISO 8601).', '2026-11-25T05:00:00.000Z'),
  author: d(z.string(), 'Name of the token that made the change.', 'ci'),
  message: d(z.string().nullable(), 'What the change was.', 'update pool greeter'),
  rollbackOf: d(z.int().nullable(), 'The revision this one restored, for rollbacks.', null),
  changes: d(z.array(changeSchema), 'The diff against the revision before.', EXAMPLE_CHANGES),
  converged: d(z.boolean(), 'true once every connected balancer applied this revision (or a later one).', true).optional(),
});

export const revisionSchema = revisionSummarySchema.extend({ config: d(configSchema, 'The whole configuration at this revision.', { healthPolicies: [], pools: [{ name: 'greeter', match: { services: ['helloworld.Greeter'] }, backends: [{ address: '127.0.0.1:50051' }] }] }) });

export const problemSchema = z.object({
  type: d(z.string(), 'A URI naming the kind of problem.', 'https://switchboard.dev/problems/validation'),
  title: d(z.string(), 'Short summary of the kind of problem.', 'Invalid request body'),
  status: d(z.int(), 'The HTTP status.', 400),
  detail: d(z.string(), 'What went wrong in this case, naming the field.', 'backends[0].weight: Too big: expected number to be <=1000'),
  instance: d(z.string(), 'The request path.', '/v1/pools/greeter'),
  errors: d(z.array(z.object({ path: d(z.string(), 'The offending field.', 'backends[0].weight'), message: d(z.string(), 'Why.', 'Too big') })), 'For validation problems: every offending field.', [{ path: 'backends[0].weight', message: 'Too big: expected number to be <=1000' }]).optional(),
});

export const tokenSchema = z.object({
  id: d(z.string(), 'Token id.', 'tok_3f2a9c1b7e5d4a60'),
  name: d(z.string(), 'Unique name; recorded as the author of the changes made with it.', 'ci'),
  scopes: d(z.array(z.enum(SCOPES)), 'read; write (implies read); admin (everything); node (balancers on the control plane).', ['write']),
  createdAt: d(z.string(), 'ISO 8601.', '2026-11-25T05:00:00.000Z'),
  lastUsedAt: d(z.string().nullable(), 'ISO 8601, to the minute.', null),
});

export const tokenCreateSchema = z.strictObject({
  name: d(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 characters of letters, digits, ".", "_" and "-"'), 'Unique name.', 'ci'),
  scopes: d(z.array(z.enum(SCOPES)).min(1), 'Scopes granted.', ['write']),
});

export const tokenCreatedSchema = tokenSchema.extend({ token: d(z.string(), 'The secret: shown only in this response.', 'sbt_…') });

const perXdsType = <T extends z.ZodType>(t: (example: unknown) => T, description: string, examples: [unknown, unknown, unknown, unknown]) =>
  d(
    z.object({
      listeners: d(t(examples[0]), 'Listeners (LDS).', examples[0]),
      routes: d(t(examples[1]), 'Route configurations (RDS).', examples[1]),
      clusters: d(t(examples[2]), 'Clusters (CDS).', examples[2]),
      endpoints: d(t(examples[3]), 'Cluster load assignments (EDS).', examples[3]),
    }),
    description,
    { listeners: examples[0], routes: examples[1], clusters: examples[2], endpoints: examples[3] },
  );

export const nodeSchema = z.object({
  nodeId: d(z.string(), 'The balancer\'s --node-id, or the node.id of an xDS client.', 'edge-1'),
  kind: d(z.enum(['balancer', 'xds']), 'balancer: a Switchboard balancer; xds: a proxyless gRPC client on the admin\'s xDS server (--xds).', 'balancer'),
  connected: d(z.boolean(), 'Whether it is connected now.', true),
  connectedSince: d(z.string().nullable(), 'ISO 8601.', '2026-11-25T05:00:00.000Z'),
  lastSeen: d(z.string(), 'ISO 8601: last message from it.', '2026-11-25T05:01:00.000Z'),
  appliedRevision: d(z.int().nullable(), 'The revision it runs.', 7),
  lastNack: d(z.string().nullable(), 'The last revision it rejected, and why.', null),
  admin: d(z.string().nullable(), 'The admin it is (or was last) connected to: host:port/id. Several admins on one database list each other\'s balancers.', 'admin-1:8080/3f2a1c'),
  xds: d(
    z.object({
      peer: d(z.string(), 'Its address.', 'ipv4:127.0.0.1:50312'),
      identity: d(z.string(), 'How it proved who it is: "certificate CN", "token NAME" or "unauthenticated".', 'token xds-clients'),
      revision: d(z.int().nullable(), 'The config revision of the newest push.', 7),
      subscribed: perXdsType(() => z.int(), 'Resource names subscribed per type (-1: all).', [1, 1, 1, 1]),
      sentVersions: perXdsType(() => z.string().nullable(), 'The version_info last sent per type.', ['5c1d0f0e9a7b3c21', '0b7c6e1f2d3a4b5c', '9e8d7c6b5a4f3e2d', '1a2b3c4d5e6f7a8b']),
      ackedVersions: perXdsType(() => z.string().nullable(), 'The version_info of its newest ACK or NACK per type: the version it runs.', ['5c1d0f0e9a7b3c21', '0b7c6e1f2d3a4b5c', '9e8d7c6b5a4f3e2d', '1a2b3c4d5e6f7a8b']),
      nack: d(
        z
          .object({
            type: d(z.string(), 'listeners, routes, clusters or endpoints.', 'endpoints'),
            version: d(z.string(), 'The version_info it refused.', '1a2b3c4d5e6f7a8b'),
            reason: d(z.string(), 'Its error_detail.', 'address is not a valid IPv4 or IPv6 address: localhost'),
            at: d(z.string(), 'ISO 8601.', '2026-12-06T03:06:27.105Z'),
          })
          .nullable(),
        'Its last NACK: the type, the version it refused, its error_detail and when.',
        null,
      ),
    }),
    'xDS clients only.',
    { peer: 'ipv4:127.0.0.1:50312', identity: 'unauthenticated', revision: 7, subscribed: { listeners: 1, routes: 1, clusters: 1, endpoints: 1 }, sentVersions: { listeners: '5c1d0f0e9a7b3c21', routes: '0b7c6e1f2d3a4b5c', clusters: '9e8d7c6b5a4f3e2d', endpoints: '1a2b3c4d5e6f7a8b' }, ackedVersions: { listeners: '5c1d0f0e9a7b3c21', routes: '0b7c6e1f2d3a4b5c', clusters: '9e8d7c6b5a4f3e2d', endpoints: '1a2b3c4d5e6f7a8b' }, nack: null },
  ).optional(),
});

const latencySchema = z.object({
  p50: d(z.number(), 'Median, ms, over the last report interval.', 4.2),
  p90: d(z.number(), '90th percentile, ms.', 9.8),
  p99: d(z.number(), '99th percentile, ms (across nodes: the highest).', 31.5),
});

const backendFigureFields = {
  address: d(z.string(), 'Backend address.', '127.0.0.1:50051'),
  source: d(z.enum(['static', 'dns']), 'static: one of the pool\'s configured backends; dns: found by the pool\'s DNS discovery on the balancers.', 'static'),
  activeStreams: d(z.int(), 'Calls in flight now.', 3),
  calls: d(z.record(z.string(), z.int()), 'Calls ended since the balancers started, by gRPC status.', { OK: 1200, UNAVAILABLE: 2 }),
  totalCalls: d(z.int(), 'Sum of calls.', 1202),
  errors: d(z.int(), 'Calls that did not end OK.', 2),
  callsPerSecond: d(z.number(), 'Rate over the last two reports.', 41.5),
  latencyMs: d(latencySchema, 'Call latency percentiles.', { p50: 4.2, p90: 9.8, p99: 31.5 }),
  healthy: d(z.boolean(), 'Healthy on every reporting node.', true),
  ejected: d(z.boolean(), 'Ejected on some node.', false),
  draining: d(z.boolean(), 'Draining.', false),
  reachable: d(z.boolean(), 'Some reporting node can reach it (connects, TLS handshake passes). An unreachable backend is not healthy.', true),
  lastError: d(z.string().nullable(), 'When unreachable: why, as the balancer saw it.', null),
};

export const backendFiguresSchema = z.object({
  ...backendFigureFields,
  healthyOn: d(z.int(), 'How many reporting nodes see it healthy.', 1),
  nodes: d(z.array(z.object({ nodeId: d(z.string(), 'Node id.', 'edge-1'), ...backendFigureFields })), 'Per node, with ?perNode=true.', []).optional(),
});

const reportingNodes = d(
  z.array(z.object({ nodeId: d(z.string(), 'Node id.', 'edge-1'), reportedAt: d(z.string(), 'When its last report arrived.', '2026-11-25T05:01:00.000Z'), appliedRevision: d(z.int(), 'Revision it runs.', 7) })),
  'Nodes whose reports are summed.',
  [{ nodeId: 'edge-1', reportedAt: '2026-11-25T05:01:00.000Z', appliedRevision: 7 }],
);

export const poolStatsSchema = z.object({
  nodes: reportingNodes,
  name: d(z.string(), 'Pool name.', 'greeter'),
  panic: d(z.boolean(), 'In panic mode on some node.', false),
  failure: d(z.object({ nodeId: d(z.string(), 'The balancer.', 'edge-1'), reason: d(z.string(), 'Why it cannot serve the pool.', 'pool "greeter" tls: cannot read CA file /etc/switchboard/ca.pem') }).nullable(), 'A balancer that cannot serve this pool (a TLS file it cannot read on its host): its calls get UNAVAILABLE naming the file, while the rest of the revision serves. Null when every reporting balancer serves it.', null),
  streamsEnded: d(
    z.object({
      rebalance: d(z.int(), 'Ended to even out the pool after it changed (streams.rebalance).', 120),
      max_age: d(z.int(), 'Ended at their maximum age (streams.maxAgeMs).', 0),
      drain_timeout: d(z.int(), 'Ended on a drained or removed backend after streams.drainTimeoutMs.', 0),
    }),
    'Long-lived streams the balancers ended (UNAVAILABLE, for their clients to re-open) since they started, summed across them, by reason (pool field streams).',
    { rebalance: 120, max_age: 0, drain_timeout: 0 },
  ),
  backends: d(z.array(backendFiguresSchema), 'Per backend.', []),
});

export const statsSchema = z.object({
  nodes: reportingNodes,
  pools: d(z.array(poolStatsSchema.omit({ nodes: true })), 'Per pool.', []),
});

export const COMPONENTS: Record<string, z.ZodType> = {
  Config: configSchema,
  Pool: poolSchema,
  Backend: backendSchema,
  HealthPolicy: healthPolicySchema,
  Route: routeSchema,
  PoolPatch: poolSchema.partial().meta({ description: 'A JSON merge patch (RFC 7386) of a Pool: the fields to change; null removes an optional field.' }),
  BackendPatch: backendSchema.partial().meta({ description: 'A JSON merge patch (RFC 7386) of a Backend, e.g. {"drain": true}.' }),
  HealthPolicyPatch: healthPolicySchema.partial().meta({ description: 'A JSON merge patch (RFC 7386) of a HealthPolicy.' }),
  RoutePatch: routeSchema.partial().meta({ description: 'A JSON merge patch (RFC 7386) of a Route (rules are replaced whole).' }),
  Plan: planSchema,
  ApplyResult: applyResultSchema,
  Change: changeSchema,
  RevisionSummary: revisionSummarySchema,
  Revision: revisionSchema,
  Problem: problemSchema,
  Token: tokenSchema,
  TokenCreate: tokenCreateSchema,
  TokenCreated: tokenCreatedSchema,
  Node: nodeSchema,
  Stats: statsSchema,
  PoolStats: poolStatsSchema,
  BackendFigures: backendFiguresSchema,
};

/** JSON schemas for components.schemas (OpenAPI 3.0 dialect), request shapes (defaults optional). */
export function componentSchemas(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(COMPONENTS)) {
    const json = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    delete json.$schema;
    // A merge patch changes only the fields it names: an absent field keeps its value, so no defaults.
    if (name.endsWith('Patch')) withoutDefaults(json);
    out[name] = json;
  }
  return out;
}

function withoutDefaults(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(withoutDefaults);
  if (node === null || typeof node !== 'object') return;
  delete (node as Record<string, unknown>).default;
  for (const v of Object.values(node)) withoutDefaults(v);
}
