/**
 * One DNS resolution of a pool's `discovery.dns`: the backends its records name, with the TTL
 * that bounds how long they may be trusted. A/AAAA give one backend per address on the pool's
 * port; SRV gives each record's port, weight and priority, its target resolved to addresses
 * (A, then AAAA). Failures are classified as the metrics and `/state` name them.
 *
 * Bounds: at most MAX_ADDRESSES backends per name (the rest are dropped, and said so), at most
 * MAX_SRV_TARGETS distinct SRV targets resolved, LOOKUP_CONCURRENCY of them at a time. A hostile
 * or broken server costs at most that.
 */
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import type { DnsDiscoveryConfig } from '#config';

export const MAX_ADDRESSES = 1000;
const MAX_SRV_TARGETS = 1000;
const LOOKUP_CONCURRENCY = 16;
/** Node's resolver waits this long for one server, `tries` times. */
const TIMEOUT_MS = 2000;
const TRIES = 2;

export interface Discovered {
  /** host:port as the balancer dials it. */
  address: string;
  weight: number;
  /** SRV priority (lower is preferred); 0 for A/AAAA. */
  priority: number;
}

export interface LookupResult {
  backends: Discovered[];
  /** The smallest TTL of the records, in ms (undefined when the records did not say). */
  ttlMs: number | undefined;
  /** Records beyond MAX_ADDRESSES that were dropped. */
  dropped: number;
}

/**
 * How a resolution failed: `empty` is an authoritative "nothing here" (NXDOMAIN or no records of
 * the type), which the watcher holds before believing; the others keep the last good set.
 */
export type LookupFailureKind = 'empty' | 'timeout' | 'servfail' | 'refused' | 'error';

export class LookupFailure extends Error {
  constructor(
    readonly kind: LookupFailureKind,
    message: string,
  ) {
    super(message);
  }
}

/** The DNS operations a lookup needs (node's Resolver; a scripted one in unit tests). */
export interface DnsClient {
  resolve4(name: string, options: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
  resolve6(name: string, options: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
  resolveSrv(name: string): Promise<{ name: string; port: number; priority: number; weight: number }[]>;
}

export function dnsClient(resolvers: readonly string[] | undefined): DnsClient {
  const r = new dns.Resolver({ timeout: TIMEOUT_MS, tries: TRIES });
  if (resolvers !== undefined) r.setServers([...resolvers]);
  return r;
}

export function classify(err: unknown, name: string): LookupFailure {
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'ENOTFOUND':
      return new LookupFailure('empty', `${name}: NXDOMAIN (no such name)`);
    case 'ENODATA':
      return new LookupFailure('empty', `${name}: no records`);
    case 'ETIMEOUT':
      return new LookupFailure('timeout', `${name}: DNS timeout`);
    case 'ESERVFAIL':
      return new LookupFailure('servfail', `${name}: SERVFAIL`);
    case 'EREFUSED':
      return new LookupFailure('refused', `${name}: REFUSED`);
    default:
      return new LookupFailure('error', `${name}: ${code ?? ''} ${(err as Error).message ?? String(err)}`.slice(0, 300));
  }
}

const withPort = (ip: string, port: number): string => (isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`);

export async function lookup(client: DnsClient, config: DnsDiscoveryConfig): Promise<LookupResult> {
  const name = config.name;
  try {
    if (config.type === 'SRV') return await lookupSrv(client, name);
    const records = config.type === 'A' ? await client.resolve4(name, { ttl: true }) : await client.resolve6(name, { ttl: true });
    if (records.length === 0) throw new LookupFailure('empty', `${name}: no records`);
    return bounded(
      records.map((r) => ({ address: withPort(r.address, config.port!), weight: 1, priority: 0 })),
      minTtl(records),
    );
  } catch (err) {
    throw err instanceof LookupFailure ? err : classify(err, name);
  }
}

async function lookupSrv(client: DnsClient, name: string): Promise<LookupResult> {
  const records = await client.resolveSrv(name);
  if (records.length === 0) throw new LookupFailure('empty', `${name}: no records`);
  const targets = [...new Set(records.map((r) => r.name.toLowerCase()))].slice(0, MAX_SRV_TARGETS);
  const resolved = new Map<string, { ips: string[]; ttl: number | undefined }>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < targets.length) {
      const target = targets[next++]!;
      resolved.set(target, await targetAddresses(client, target));
    }
  };
  await Promise.all(Array.from({ length: Math.min(LOOKUP_CONCURRENCY, targets.length) }, worker));
  const backends: Discovered[] = [];
  let ttl: number | undefined;
  for (const r of records) {
    const t = resolved.get(r.name.toLowerCase());
    if (t === undefined) continue;
    if (t.ttl !== undefined) ttl = ttl === undefined ? t.ttl : Math.min(ttl, t.ttl);
    // SRV weight 0 means "rarely"; 1..65535 is clamped to the pool's 1..1000.
    for (const ip of t.ips) backends.push({ address: withPort(ip, r.port), weight: Math.min(1000, Math.max(1, r.weight)), priority: r.priority });
  }
  if (backends.length === 0) throw new LookupFailure('empty', `${name}: no SRV target has an address`);
  return bounded(backends, ttl);
}

/** A target's addresses: itself if it is an address, else its A records, else its AAAA records; none if neither resolves. */
async function targetAddresses(client: DnsClient, target: string): Promise<{ ips: string[]; ttl: number | undefined }> {
  const host = target.endsWith('.') ? target.slice(0, -1) : target;
  if (isIP(host) !== 0) return { ips: [host], ttl: undefined };
  for (const resolve of [client.resolve4.bind(client), client.resolve6.bind(client)]) {
    try {
      const records = await resolve(host, { ttl: true });
      if (records.length > 0) return { ips: records.map((r) => r.address), ttl: minTtl(records) };
    } catch {
      // try the next family; a target with no address is left out
    }
  }
  return { ips: [], ttl: undefined };
}

function minTtl(records: readonly { ttl: number }[]): number | undefined {
  let min: number | undefined;
  for (const r of records) if (Number.isFinite(r.ttl) && r.ttl >= 0) min = min === undefined ? r.ttl * 1000 : Math.min(min, r.ttl * 1000);
  return min;
}

/** Deduplicated by address (the first record wins), at most MAX_ADDRESSES, in a stable order. */
function bounded(all: Discovered[], ttlMs: number | undefined): LookupResult {
  const byAddress = new Map<string, Discovered>();
  for (const b of all) if (!byAddress.has(b.address)) byAddress.set(b.address, b);
  const unique = [...byAddress.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return { backends: unique.slice(0, MAX_ADDRESSES), ttlMs, dropped: Math.max(0, unique.length - MAX_ADDRESSES) };
}
