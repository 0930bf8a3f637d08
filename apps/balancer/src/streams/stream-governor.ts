/**
 * Long-lived streams follow the fleet (issue 23), for one balancer process:
 *
 *  - rebalance: four times a second, each pool with `streams.rebalance` whose available backends
 *    or weights changed since it was last in balance ends the oldest streams (older than
 *    minAgeMs) of its over-loaded backends, as rebalance-plan.ts says, at most maxPerSecond per
 *    pool per balancer (a worker holds its 1/N share of it). The allowance is a token bucket
 *    that saves up at most one round's share (rebalanceAllowance), so any second sees at most
 *    maxPerSecond plus about a round's share, in small batches rather than one burst a second
 *    (a burst a second let two bursts land in one second of a client's clock: 2x maxPerSecond);
 *  - maximum age: a stream of a pool with `streams.maxAgeMs` ends at its own jittered age; a
 *    revision that first gives streams a maximum age they are already past spreads their ends
 *    over the jitter window;
 *  - bounded drains: with `streams.drainTimeoutMs`, streams still open on a drained or removed
 *    backend end that long after.
 *
 * An ended stream gets UNAVAILABLE (a client re-opens it) with a grpc-message beginning
 * "rebalanced", "max stream age" or "drained"; its upstream gets RST_STREAM CANCEL.
 */
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { StreamsConfig } from '#config';
import type { Runtime } from '../config/runtime';
import type { Backend } from '../pool/backend';
import type { Pool } from '../pool/pool';
import type { ProxiedCall } from '../proxy/proxied-call';
import { Status } from '../proxy/grpc-status';
import { rebalanceAllowance } from './rebalance-allowance';
import { planRebalance } from './rebalance-plan';

const TICK_MS = 250;
/** For this long after a round, streams it ended that have not come back yet still count in the pool's total (their clients re-open them). */
const PENDING_MS = 3000;

export type EndReason = 'rebalance' | 'max_age' | 'drain_timeout';

interface PoolRound {
  /** Available backends and their weights when last seen; a change arms the rebalance. */
  signature: string;
  armed: boolean;
  /** Streams this round may end (rebalanceAllowance), fractions carried between rounds. */
  allowance: number;
  /** The pool's stream total before the last round ended some, and until when it is expected back. */
  expected: number;
  expectedUntil: number;
}

export class StreamGovernor {
  private readonly ended: Counter<'pool' | 'reason'>;
  private readonly rounds = new Map<string, PoolRound>();
  /** Streams ended per pool and reason since start, for the stats sent to the admin. */
  readonly endedByPool = new Map<string, Record<EndReason, number>>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly runtime: () => Runtime,
    /** This process's share of the balancer's calls (1/N in a worker). */
    private readonly share: number,
    registry: Registry,
    private readonly log: Logger,
    private readonly random: () => number = Math.random,
  ) {
    this.ended = new Counter({
      name: 'switchboard_streams_ended_total',
      help: 'Long-lived streams the balancer ended with UNAVAILABLE so that their clients re-open them, by reason (rebalance, max_age, drain_timeout).',
      labelNames: ['pool', 'reason'],
      registers: [registry],
    });
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** A call's response began on a pool with `streams`: give it its maximum age. */
  streamOpened(call: ProxiedCall): void {
    const cfg = call.pool.streams;
    if (cfg?.maxAgeMs !== undefined) this.armMaxAge(call, cfg, false);
  }

  /** A revision (or a discovery change) is serving: re-arm maximum ages that changed, and drain timers. */
  applied(next: Runtime, previous: Runtime, retired: readonly Backend[]): void {
    const now = performance.now();
    for (const pool of next.pools.values()) {
      const before = previous.pools.get(pool.name)?.streams;
      const cfg = pool.streams;
      if (before?.maxAgeMs !== cfg?.maxAgeMs || before?.maxAgeJitterPercent !== cfg?.maxAgeJitterPercent) {
        for (const b of pool.backends) {
          for (const s of b.streams.all()) {
            const call = s as ProxiedCall;
            call.clearMaxAge();
            if (cfg?.maxAgeMs !== undefined) this.armMaxAge(call, cfg, true);
          }
        }
      }
      for (const b of pool.backends) {
        if (b.draining && cfg?.drainTimeoutMs !== undefined) this.armDrain(b, pool.name, cfg.drainTimeoutMs, now);
        else b.clearDrainTimer();
      }
    }
    for (const b of retired) {
      const cfg = next.pools.get(b.pool)?.streams ?? previous.pools.get(b.pool)?.streams;
      if (cfg?.drainTimeoutMs !== undefined) this.armDrain(b, b.pool, cfg.drainTimeoutMs, now);
    }
  }

  private armMaxAge(call: ProxiedCall, cfg: StreamsConfig, spreadIfPast: boolean): void {
    const maxAge = cfg.maxAgeMs!;
    const jitter = (cfg.maxAgeJitterPercent / 100) * maxAge;
    const limit = maxAge - jitter + 2 * jitter * this.random();
    const age = performance.now() - call.committedAt;
    let delay = limit - age;
    // Already past it when the setting arrived: ends spread over the jitter window, not all at once.
    if (delay < 0) delay = spreadIfPast ? this.random() * Math.max(2 * jitter, 1000) : 0;
    call.setMaxAge(delay, () => this.end(call, 'max_age', `max stream age: the balancer ends streams after ${Math.round(limit)} ms (maxAgeMs ${maxAge}); re-open it`));
  }

  private armDrain(b: Backend, pool: string, timeoutMs: number, now: number): void {
    b.armDrainTimer(timeoutMs, () => {
      const streams = b.streams.all();
      for (const s of streams) this.end(s as ProxiedCall, 'drain_timeout', `drained: backend ${b.address} left pool "${pool}" ${Math.round(performance.now() - now)} ms ago (drainTimeoutMs ${timeoutMs}); re-open it`);
      if (streams.length > 0) this.log.info({ pool, backend: b.address, ended: streams.length, drainTimeoutMs: timeoutMs }, 'drain timeout: streams still open on the backend ended');
    });
  }

  private end(call: ProxiedCall, reason: EndReason, message: string): void {
    if (!call.endStream(Status.UNAVAILABLE, message)) return;
    const pool = call.pool.name;
    this.ended.inc({ pool, reason });
    let counts = this.endedByPool.get(pool);
    if (counts === undefined) this.endedByPool.set(pool, (counts = { rebalance: 0, max_age: 0, drain_timeout: 0 }));
    counts[reason]++;
  }

  private tick(): void {
    const runtime = this.runtime();
    const now = performance.now();
    for (const pool of runtime.pools.values()) {
      const cfg = pool.streams?.rebalance;
      if (cfg === undefined) {
        this.rounds.delete(pool.name);
        continue;
      }
      this.rebalance(pool, cfg, now);
    }
    for (const name of this.rounds.keys()) if (!runtime.pools.has(name)) this.rounds.delete(name);
  }

  private rebalance(pool: Pool, cfg: NonNullable<StreamsConfig['rebalance']>, now: number): void {
    const available = pool.backends.filter((b) => b.available);
    const signature = available.map((b) => `${b.address}=${Math.round(b.weight * 100)}`).join(',');
    let round = this.rounds.get(pool.name);
    if (round === undefined) {
      round = { signature, armed: true, allowance: 0, expected: 0, expectedUntil: 0 };
      this.rounds.set(pool.name, round);
    } else if (round.signature !== signature) {
      round.signature = signature;
      round.armed = true;
    }
    round.allowance = rebalanceAllowance(round.allowance, cfg.maxPerSecond * this.share, TICK_MS);
    if (!round.armed) return;
    const budget = Math.floor(round.allowance);
    const current = available.reduce((a, b) => a + b.streams.size, 0);
    // Ended a moment ago and not re-opened yet: still the pool's (else the next round would see
    // the old backends at their share of a smaller total and end more than needed).
    const pending = now < round.expectedUntil ? Math.max(0, round.expected - current) : 0;
    const plan = planRebalance({
      backends: available.map((b) => ({ weight: b.weight, streams: b.streams.size })),
      tolerancePercent: cfg.tolerancePercent,
      budget: Math.max(budget, 1),
      pending,
    });
    const wanted = plan.reduce((a, b) => a + b, 0);
    if (wanted === 0) {
      round.armed = false; // in balance: nothing more until the pool changes again
      return;
    }
    if (budget < 1) return;
    const from: Record<string, number> = {};
    let total = 0;
    plan.forEach((n, i) => {
      if (n === 0) return;
      const b = available[i]!;
      for (const s of b.streams.oldest(n, now - cfg.minAgeMs)) {
        this.end(s as ProxiedCall, 'rebalance', `rebalanced: backend ${b.address} carried more than its share of pool "${pool.name}"'s streams; re-open it`);
        from[b.address] = (from[b.address] ?? 0) + 1;
        total++;
      }
    });
    round.allowance -= total;
    if (total > 0) {
      round.expected = current + pending;
      round.expectedUntil = now + PENDING_MS;
    }
    if (total > 0) this.log.info({ pool: pool.name, ended: total, from, streams: available.reduce((a, b) => a + b.streams.size, 0) }, 'streams rebalanced: the oldest streams of over-loaded backends ended for their clients to re-open');
  }
}
