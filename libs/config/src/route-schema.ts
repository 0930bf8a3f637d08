/** Top-level `routes`: calls by hostname, service, method and header to weighted pools, GRPCRoute's shape (issue 24). */
import { z } from 'zod';
import { described, labels, name } from './schema-parts';

/** A header name a call can carry: lowercase token characters (HTTP/2 forbids uppercase). */
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]{1,128}$/;
/** Headers a route may not set or remove: HTTP/2's connection headers and the ones gRPC itself relies on. */
const RESERVED_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host', 'content-type', 'content-length', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding']);
const headerName = z.string().regex(HEADER_NAME, 'must be a lowercase HTTP/2 header name (letters, digits and !#$%&\'*+.^_`|~-), at most 128 characters');
const settableHeader = headerName.refine((n) => !RESERVED_HEADERS.has(n) && !n.startsWith('grpc-'), 'is a header the balancer or gRPC itself sets; a route may not change it');
/** A header value a call can carry: visible ASCII and spaces, no leading or trailing space (no CR, LF or NUL). */
const headerValue = z
  .string()
  .max(4096)
  .regex(/^([\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?)?$/, 'must be visible ASCII with inner spaces only (no control characters, no leading or trailing space): no call could carry it otherwise');
/** A route hostname: a DNS name or "*." and a suffix, lowercase, no port. */
const routeHostname = z
  .string()
  .max(253)
  .regex(/^(\*\.)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, 'must be a lowercase DNS name, or "*." and one (e.g. *.example.com), without a port');
const METHOD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SERVICE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

export const routeMatchSchema = z.strictObject({
  method: described(
    z.strictObject({
      service: described(z.string().max(256).regex(SERVICE_NAME, 'must be a fully qualified gRPC service name (package.Service)'), 'The service, exactly.', 'helloworld.Greeter'),
      method: described(z.string().max(128).regex(METHOD_NAME, 'must be a gRPC method name'), 'The method, exactly; absent: every method of the service.', 'SayHello').optional(),
    }),
    'Calls to this service (and method).',
    { service: 'helloworld.Greeter', method: 'SayHello' },
  ).optional(),
  headers: described(
    z.array(z.strictObject({ name: described(headerName, 'Header name, lowercase.', 'x-canary'), value: described(headerValue, 'The exact value.', 'always') })).max(16),
    'Request headers the call must carry, exactly (all of them).',
    [{ name: 'x-canary', value: 'always' }],
  ).optional(),
});

export const routeBackendSchema = z.strictObject({
  pool: described(name, 'A pool of this config.', 'greeter-v1'),
  weight: described(z.int().min(0).max(1000), 'Share of the rule\'s calls (smooth weighted round robin over the rule\'s pools); 0 drains the pool out of the route.', 90).default(1),
});

export const routeRuleSchema = z
  .strictObject({
    matches: described(z.array(routeMatchSchema).max(8), 'A call matches the rule when it matches any one of these (a match needs all its parts); none: every call of the route.', [{ method: { service: 'helloworld.Greeter' } }]).default([]),
    backends: described(z.array(routeBackendSchema).min(1).max(16), 'The pools that serve the rule\'s calls, by weight.', [{ pool: 'greeter-v1', weight: 90 }, { pool: 'greeter-v2', weight: 10 }]),
    requestHeaders: described(
      z.strictObject({
        set: described(z.record(settableHeader, headerValue), 'Headers set to these values (replacing any the call carries).', { 'x-route': 'canary' }).optional(),
        add: described(z.record(settableHeader, headerValue), 'Headers added (beside any of the same name the call carries).', { 'x-tag': 'v2' }).optional(),
        remove: described(z.array(settableHeader).max(32), 'Headers removed.', ['x-debug']).optional(),
      }),
      'Request headers to set (replace), add, or remove before the call goes to a backend.',
      { set: { 'x-route': 'canary' }, remove: ['x-debug'] },
    ).optional(),
    mirror: described(
      z.strictObject({ pool: described(name, 'The shadow pool.', 'greeter-shadow'), percent: described(z.number().min(0).max(100), 'Share of the rule\'s unary calls copied to it (exactly, not at random).', 10) }),
      'Copies unary calls to a shadow pool, fire-and-forget: the copies\' answers are dropped, and a shadow that is down costs the calls nothing.',
      { pool: 'greeter-shadow', percent: 10 },
    ).optional(),
    timeoutMs: described(z.int().min(1).max(86_400_000), 'A deadline, in ms, for the rule\'s calls that carry none or a longer one.', 2000).optional(),
  })
  .superRefine((r, ctx) => {
    if (r.backends.every((b) => b.weight === 0)) ctx.addIssue({ code: 'custom', path: ['backends'], message: 'at least one pool needs a weight above 0' });
    for (const kind of ['set', 'add'] as const) {
      const h = r.requestHeaders?.[kind];
      if (h !== undefined && Object.keys(h).length > 32) ctx.addIssue({ code: 'custom', path: ['requestHeaders', kind], message: 'at most 32 headers' });
    }
  });

export const routeSchema = z.strictObject({
  name: described(name, 'Unique name of the route (a-z, 0-9, "-").', 'greeter'),
  hostnames: described(z.array(routeHostname).max(16), 'The :authority the route applies to, exact or "*.suffix" (without port); empty: any.', []).default([]),
  rules: described(z.array(routeRuleSchema).min(1).max(16), 'Rules, applied by GRPCRoute precedence (not file order): the most specific hostname, then service, then method, then the most header matches.', [{ backends: [{ pool: 'greeter', weight: 1 }] }]),
  labels,
});

export type RouteConfig = z.output<typeof routeSchema>;
export type RouteRuleConfig = z.output<typeof routeRuleSchema>;

/** The routes that send calls to `pool` (its backends or mirror), for a refused delete. */
export function routesUsing(cfg: { routes?: RouteConfig[] }, pool: string): string[] {
  return (cfg.routes ?? []).filter((r) => r.rules.some((rule) => rule.backends.some((b) => b.pool === pool) || rule.mirror?.pool === pool)).map((r) => r.name);
}
