/** A pool's `discovery.dns`: backends found by DNS (A, AAAA, SRV), resolved by every balancer (issue 22). */
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { described } from './schema-parts';

/** A DNS name to resolve: labels of letters, digits, "-" and (for SRV) a leading "_", 253 characters at most, an optional final dot. */
const DNS_LABEL = /^_?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const dnsName = z
  .string()
  .min(1)
  .max(254)
  .check((ctx) => {
    const name = ctx.value.endsWith('.') ? ctx.value.slice(0, -1) : ctx.value;
    if (name.length === 0 || name.length > 253 || !name.split('.').every((l) => DNS_LABEL.test(l))) {
      ctx.issues.push({ code: 'custom', message: 'must be a DNS name: labels of a-z, 0-9 and "-" (SRV labels may start with "_"), at most 253 characters', input: ctx.value });
    }
  });

/** A DNS server: an IPv4 address or a bracketed IPv6 address, with an optional port (default 53). */
const resolverAddress = z
  .string()
  .max(64)
  .check((ctx) => {
    const m = /^(?:([0-9.]+)|\[([0-9A-Fa-f:.]+)\])(?::([0-9]{1,5}))?$/.exec(ctx.value);
    const port = m?.[3] === undefined ? 53 : Number(m[3]);
    if (m === null || !(m[1] !== undefined ? isIPv4(m[1]) : isIPv6(m[2]!)) || port < 1 || port > 65535) {
      ctx.issues.push({ code: 'custom', message: 'must be an IP address with an optional port, e.g. 127.0.0.1:5353 or [::1]:53', input: ctx.value });
    }
  });

export const DNS_RECORD_TYPES = ['A', 'AAAA', 'SRV'] as const;

export const dnsDiscoverySchema = z
  .strictObject({
    name: described(dnsName, 'The name every balancer resolves: an A/AAAA name (a Kubernetes headless Service) or an SRV name (_grpc._tcp.greeter.default.svc.cluster.local).', 'greeter.default.svc.cluster.local'),
    type: described(z.enum(DNS_RECORD_TYPES), 'A or AAAA: one backend per address, on `port`; SRV: ports and weights from the records (lowest priority with a healthy backend).', 'A').default('A'),
    port: described(z.int().min(1).max(65535), 'The backends\' port (A and AAAA only).', 50051).optional(),
    refreshMs: described(z.int().min(500).max(3_600_000), 'At most this long between resolutions, in ms (a shorter TTL wins; jittered).', 5000).default(5000),
    holdMs: described(z.int().min(0).max(3_600_000), 'An authoritative empty answer (NXDOMAIN, no records) empties the pool only after this long, in ms (HAProxy\'s hold nx).', 30000).default(30_000),
    resolvers: described(z.array(resolverAddress).min(1).max(8), 'DNS servers to ask (ip[:port]); default: the host\'s resolv.conf.', ['127.0.0.1:5353']).optional(),
  })
  .superRefine((d, ctx) => {
    if (d.type !== 'SRV' && d.port === undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: `is required for type ${d.type} (SRV records carry their own ports)` });
    if (d.type === 'SRV' && d.port !== undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: 'is not used with type SRV (the records carry the ports): remove it' });
  });

export const discoverySchema = z.strictObject({
  dns: described(dnsDiscoverySchema, 'Backends found by DNS, resolved by every balancer itself.', { name: 'greeter.default.svc.cluster.local', type: 'A', port: 50051, refreshMs: 5000 }),
});

export type DnsDiscoveryConfig = z.output<typeof dnsDiscoverySchema>;
