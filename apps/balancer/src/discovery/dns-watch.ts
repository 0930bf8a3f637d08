/**
 * Keeps one pool's DNS-discovered backends current (issue 22), as Envoy's STRICT_DNS cluster
 * and HAProxy's resolvers do:
 *
 *  - resolves at once, then every `refreshMs`, sooner when the records' TTL is shorter (never
 *    more often than once a second), each delay jittered down by up to 10% so that a fleet of
 *    balancers does not ask in step;
 *  - a failure (timeout, SERVFAIL, REFUSED, a network error) keeps the last good set and tries
 *    again with backoff (1 s, doubling, at most `refreshMs`);
 *  - an authoritative empty answer (NXDOMAIN, no records) is believed only once it has held for
 *    `holdMs`: one bad answer cannot take a whole service out;
 *  - `onChange` is told only when the set differs (addresses, weights, priorities).
 *
 * Clock, timers and randomness are injected, so unit tests script them.
 */
import type { DnsDiscoveryConfig } from '#config';
import { lookup, LookupFailure, type Discovered, type DnsClient, type LookupFailureKind } from './dns-lookup';

export interface WatchTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
}

export const REAL_TIMERS: WatchTimers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  random: Math.random,
};

const MIN_REFRESH_MS = 1000;
const FIRST_BACKOFF_MS = 1000;

export type ResolutionResult = 'success' | LookupFailureKind;

export interface WatchEvents {
  /** The set changed (the first answer included): the pool's backends are these now. */
  changed(backends: readonly Discovered[]): void;
  /** Every resolution, for the metrics; `dropped`: addresses beyond the bound. */
  resolved(result: ResolutionResult, dropped: number): void;
  /** A failure after a success, a recovery after a failure, or an empty answer believed (logged by the caller). */
  transition(message: string, level: 'info' | 'warn'): void;
}

export interface DiscoveryStatus {
  name: string;
  type: string;
  addresses: string[];
  /** ISO times; null until it happens. */
  lastSuccess: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
}

export class DnsWatch {
  private backends: readonly Discovered[] | null = null;
  private timer: unknown = null;
  private stopped = false;
  private failures = 0;
  private emptySince: number | null = null;
  private lastSuccess: number | null = null;
  private lastError: string | null = null;
  private lastErrorAt: number | null = null;
  private failing = false;

  constructor(
    readonly config: DnsDiscoveryConfig,
    private readonly client: DnsClient,
    private readonly events: WatchEvents,
    private readonly timers: WatchTimers = REAL_TIMERS,
  ) {}

  start(): void {
    void this.resolve();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  /** The current set; null before the first answer. */
  get current(): readonly Discovered[] | null {
    return this.backends;
  }

  /** Why the set is empty (for a call's UNAVAILABLE message); null when it is not. */
  get emptyReason(): string | null {
    if (this.backends !== null && this.backends.length > 0) return null;
    if (this.lastError !== null) return `DNS name "${this.config.name}" (${this.config.type}) has no usable answer: ${this.lastError}`;
    return `DNS name "${this.config.name}" (${this.config.type}) is not resolved yet`;
  }

  status(): DiscoveryStatus {
    const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
    return {
      name: this.config.name,
      type: this.config.type,
      addresses: (this.backends ?? []).map((b) => b.address),
      lastSuccess: iso(this.lastSuccess),
      lastError: this.lastError,
      lastErrorAt: iso(this.lastErrorAt),
    };
  }

  private async resolve(): Promise<void> {
    this.timer = null;
    let result;
    try {
      result = await lookup(this.client, this.config);
    } catch (err) {
      if (this.stopped) return;
      this.failed(err instanceof LookupFailure ? err : new LookupFailure('error', String(err)));
      return;
    }
    if (this.stopped) return;
    this.events.resolved('success', result.dropped);
    const now = this.timers.now();
    this.lastSuccess = now;
    this.failures = 0;
    this.emptySince = null;
    if (this.failing) this.events.transition(`DNS name "${this.config.name}" answers again (${result.backends.length} addresses)`, 'info');
    this.failing = false;
    if (result.dropped > 0) this.events.transition(`DNS name "${this.config.name}" has more than ${result.backends.length} addresses: ${result.dropped} dropped`, 'warn');
    this.set(result.backends);
    const ttl = result.ttlMs === undefined ? Infinity : Math.max(MIN_REFRESH_MS, result.ttlMs);
    this.schedule(Math.min(this.config.refreshMs, ttl));
  }

  private failed(err: LookupFailure): void {
    const now = this.timers.now();
    this.events.resolved(err.kind, 0);
    this.lastError = err.message;
    this.lastErrorAt = now;
    this.failures++;
    const backoff = Math.min(this.config.refreshMs, FIRST_BACKOFF_MS * 2 ** Math.min(this.failures - 1, 20));
    if (!this.failing) {
      const keeps = this.backends !== null && this.backends.length > 0 ? `keeping the last ${this.backends.length} addresses` : 'no addresses yet';
      const hold = err.kind === 'empty' && this.backends !== null && this.backends.length > 0 ? ` for up to ${this.config.holdMs} ms` : '';
      this.events.transition(`DNS resolution failed: ${err.message}; ${keeps}${hold}`, 'warn');
      this.failing = true;
    }
    if (err.kind !== 'empty') {
      this.emptySince = null;
      this.schedule(backoff);
      return;
    }
    // Authoritative "nothing here": believed once it has held for holdMs.
    this.emptySince ??= now;
    const heldFor = now - this.emptySince;
    if (heldFor >= this.config.holdMs) {
      if (this.backends === null || this.backends.length > 0) {
        if (this.backends !== null) this.events.transition(`DNS name "${this.config.name}" has had no records for ${heldFor} ms: the pool's discovered backends are removed`, 'warn');
        this.set([]);
      }
      this.schedule(backoff);
      return;
    }
    this.schedule(Math.min(backoff, Math.max(100, this.config.holdMs - heldFor)), false);
  }

  private set(backends: readonly Discovered[]): void {
    if (this.backends !== null && sameSet(this.backends, backends)) return;
    this.backends = backends;
    this.events.changed(backends);
  }

  private schedule(ms: number, jitter = true): void {
    if (this.stopped) return;
    const delay = jitter ? ms * (1 - 0.1 * this.timers.random()) : ms;
    this.timer = this.timers.setTimeout(() => void this.resolve(), delay);
  }
}

/** Both sorted by address (dns-lookup returns them so). */
function sameSet(a: readonly Discovered[], b: readonly Discovered[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.address !== y.address || x.weight !== y.weight || x.priority !== y.priority) return false;
  }
  return true;
}
