import { describe, expect, it } from '@jest/globals';
import * as fc from 'fast-check';
import { poolSchema } from '#config';
import { backoffMs, CallPolicy, pushbackMs } from './call-policy';
import { LatencyWindow, MIN_SAMPLES } from './latency-window';
import { RetryBudget } from './retry-budget';

const pool = (extra: Record<string, unknown>) => poolSchema.parse({ name: 'p', match: { services: ['*'] }, ...extra });

describe('CallPolicy', () => {
  it('is null (free) for a pool with neither retry nor hedging', () => {
    expect(CallPolicy.of(pool({}))).toBeNull();
  });

  it('hedges only the listed methods: exact, a whole service, or every method', () => {
    const p = CallPolicy.of(pool({ hedging: { methods: ['a.B/Get', 'c.D/*'] } }))!;
    expect(p.hedgingFor('/a.B/Get')).not.toBeNull();
    expect(p.hedgingFor('/a.B/Put')).toBeNull();
    expect(p.hedgingFor('/c.D/Anything')).not.toBeNull();
    expect(p.hedgingFor('/c.Dx/Anything')).toBeNull();
    expect(p.hedgingFor('')).toBeNull();
    expect(CallPolicy.of(pool({ hedging: { methods: ['*'] } }))!.hedgingFor('/x.Y/Z')).not.toBeNull();
  });

  it('budget shared by all workers: each of N workers holds 1/N of the floor, so the balancer pays minPerSecond once', () => {
    const config = pool({ hedging: { methods: ['*'] }, retryBudget: { percent: 20, minPerSecond: 10 } });
    const whole = CallPolicy.of(config)!.budget.state(0).allowed;
    const workers = [0, 1].map(() => CallPolicy.of(config, 1 / 2)!.budget.state(0).allowed);
    expect(whole).toBe(100); // 10 per second over the 10 s window
    expect(workers.reduce((a, b) => a + b, 0)).toBe(whole);
  });

  it('turns status names into masks', () => {
    const p = CallPolicy.of(pool({ retry: { retryableStatusCodes: ['UNAVAILABLE', 'RESOURCE_EXHAUSTED'] }, hedging: { nonFatalStatusCodes: ['ABORTED'] } }))!;
    expect(p.retry!.codes).toBe((1 << 14) | (1 << 8));
    expect(p.hedging!.nonFatal).toBe(1 << 10);
  });

  it('uses the fixed delay until the adaptive percentile has enough samples, then the percentile (at least minMs)', () => {
    const p = CallPolicy.of(pool({ hedging: { delayMs: 40, adaptiveDelay: { percentile: 95, minMs: 3 } } }))!;
    expect(p.hedgeDelayMs(0)).toBe(40);
    for (let i = 0; i < 1000; i++) p.headerLatency!.record(i < 950 ? 10 : 100, 1);
    const d = p.hedgeDelayMs(1000);
    expect(d).toBeGreaterThanOrEqual(10);
    expect(d).toBeLessThanOrEqual(10.6); // the bucket holding p95, 5% wide
    const fast = CallPolicy.of(pool({ hedging: { adaptiveDelay: { minMs: 3 } } }))!;
    for (let i = 0; i < 200; i++) fast.headerLatency!.record(0.2, 1);
    expect(fast.hedgeDelayMs(1000)).toBe(3);
  });
});

describe('backoff and pushback', () => {
  const rule = { maxAttempts: 5, initialBackoffMs: 25, maxBackoffMs: 250, multiplier: 2, codes: 0 };

  it('waits a random time below min(initial x multiplier^(n-1), max)', () => {
    expect(backoffMs(rule, 1, () => 0.999999)).toBeCloseTo(25, 3);
    expect(backoffMs(rule, 2, () => 0.5)).toBe(25);
    expect(backoffMs(rule, 4, () => 0.999999)).toBeCloseTo(200, 3);
    expect(backoffMs(rule, 5, () => 0.999999)).toBeCloseTo(250, 3);
    fc.assert(fc.property(fc.integer({ min: 1, max: 50 }), fc.double({ min: 0, max: 0.9999999, noNaN: true }), (n, r) => {
      const d = backoffMs(rule, n, () => r);
      return d >= 0 && d <= 250;
    }));
  });

  it('reads grpc-retry-pushback-ms: a delay, or -1 (do not retry) for negative or malformed values', () => {
    expect(pushbackMs(undefined)).toBeUndefined();
    expect(pushbackMs('0')).toBe(0);
    expect(pushbackMs('250')).toBe(250);
    for (const bad of ['-1', '', ' 5', '1e3', '12345678901', 'abc', ['1', '2']]) expect(pushbackMs(bad)).toBe(-1);
  });
});

describe('RetryBudget', () => {
  it('allows percent of the calls in the window plus minPerSecond per second', () => {
    const b = new RetryBudget(20, 0);
    for (let i = 0; i < 100; i++) b.deposit(500);
    let granted = 0;
    while (b.tryWithdraw(600)) granted++;
    expect(granted).toBe(20);
    expect(b.state(600)).toEqual({ calls: 100, retries: 20, allowed: 20 });
    const floor = new RetryBudget(0, 3);
    let n = 0;
    while (floor.tryWithdraw(0)) n++;
    expect(n).toBe(30); // 3 per second over the 10 s window
  });

  it('forgets what is older than the window', () => {
    const b = new RetryBudget(50, 0);
    for (let i = 0; i < 10; i++) b.deposit(0);
    while (b.tryWithdraw(0));
    expect(b.tryWithdraw(9_999)).toBe(false);
    expect(b.state(10_500)).toEqual({ calls: 0, retries: 0, allowed: 0 });
    b.deposit(60_000);
    b.deposit(60_000);
    expect(b.tryWithdraw(60_000)).toBe(true);
  });
});

describe('LatencyWindow', () => {
  it('is NaN below the minimum sample count and forgets samples after two generations', () => {
    const w = new LatencyWindow(50);
    for (let i = 0; i < MIN_SAMPLES - 1; i++) w.record(5, 0);
    expect(w.value(0)).toBeNaN();
    w.record(5, 1);
    expect(w.value(300)).toBeCloseTo(5, 0);
    expect(w.value(20_000)).toBeNaN();
  });

  it('one window per balancer: two workers\' deltas absorbed by the primary give the percentile over all their calls', () => {
    // Worker A sees fast calls, worker B slow ones: each alone would hedge at its own figure.
    const a = new LatencyWindow(50);
    const b = new LatencyWindow(50);
    a.takeDelta(); // a worker starts keeping deltas
    b.takeDelta();
    for (let i = 0; i < 60; i++) a.record(2, 0);
    for (let i = 0; i < 60; i++) b.record(40, 0);
    const primary = new LatencyWindow(50);
    primary.absorb(a.takeDelta(), 0);
    primary.absorb(b.takeDelta(), 0);
    expect(a.value(0)).toBeNaN(); // 60 samples: too few alone
    expect(primary.value(0)).toBeCloseTo(2, 0); // 120 together: the median of both
    // Deltas are what is new: a second take is empty until more calls are recorded.
    expect(a.takeDelta()).toEqual([]);
    a.record(3, 1);
    expect(a.takeDelta()).toHaveLength(2);
    // A hostile or broken delta is skipped, not trusted.
    primary.absorb([-1, 5, 1e9, 5, 3.5, 1, 10, -4, 10, Number.NaN, 10], 0);
    expect(primary.value(1000)).toBeCloseTo(2, 0);
  });
});

describe('CallPolicy.hedgeDelayMs (adaptive, in a worker)', () => {
  it('uses the balancer-wide percentile while fresh (3 s), then its own window again', () => {
    const policy = CallPolicy.of(poolSchema.parse({ name: 'p', match: { services: ['*'] }, hedging: { delayMs: 50, adaptiveDelay: { percentile: 90, minMs: 5 } } }))!;
    expect(policy.hedgeDelayMs(0)).toBe(50); // nothing known: the fixed delay
    policy.useSharedDelay(12.34, 4, 1000);
    expect(policy.hedgeDelayMs(1500)).toBe(12.3);
    policy.useSharedDelay(1, 1, 2000);
    expect(policy.hedgeDelayMs(2000)).toBe(5); // never below minMs
    expect(policy.hedgeDelayMs(5001)).toBe(50); // stale: its own window, which has too few samples
  });
});

describe('CallPolicy.poolSlow (the whole pool slow: no hedge)', () => {
  const fixed = () => CallPolicy.of(pool({ hedging: { delayMs: 50 } }))!;

  it('with a fixed delay: slow once the median time to headers passes the delay, scripted samples and clock', () => {
    const p = fixed();
    expect(p.poolSlow(0)).toBe(false); // nothing known
    for (let i = 0; i < MIN_SAMPLES; i++) p.headerLatency!.record(i % 10 === 0 ? 400 : 14, 1); // a stall's tail, a quick body
    expect(p.poolSlow(1000)).toBe(false);
    expect(p.hedgeDelayMs(1000)).toBe(50); // the delay itself stays fixed
    for (let i = 0; i < 3 * MIN_SAMPLES; i++) p.headerLatency!.record(80 + (i % 40), 2000); // overload: most calls queue 80-120 ms
    expect(p.poolSlow(2000)).toBe(true);
    // The window forgets: 10 s later with quick calls again, hedging comes back.
    for (let i = 0; i < MIN_SAMPLES; i++) p.headerLatency!.record(12, 12_500);
    expect(p.poolSlow(12_500)).toBe(false);
  });

  it('a median just at the delay (one bucket) is not slow', () => {
    const p = fixed();
    for (let i = 0; i < MIN_SAMPLES; i++) p.headerLatency!.record(50, 1);
    expect(p.poolSlow(1000)).toBe(false);
  });

  it('in a worker: the balancer-wide median while fresh', () => {
    const p = fixed();
    p.useSharedDelay(200, 120, 1000);
    expect(p.poolSlow(1500)).toBe(true);
    expect(p.hedgeDelayMs(1500)).toBe(50);
    expect(p.poolSlow(4500)).toBe(false); // stale, and its own window knows nothing
  });

  it('with an adaptive delay at or above the median, never slow', () => {
    const p = CallPolicy.of(pool({ hedging: { adaptiveDelay: { percentile: 97, minMs: 1 } } }))!;
    for (let i = 0; i < 5 * MIN_SAMPLES; i++) p.headerLatency!.record(100, 1);
    expect(p.poolSlow(1000)).toBe(false);
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0.01, max: 5000, noNaN: true }), { minLength: MIN_SAMPLES, maxLength: 400 }), (samples) => {
        const q = CallPolicy.of(pool({ hedging: { adaptiveDelay: { percentile: 60, minMs: 1 } } }))!;
        for (const s of samples) q.headerLatency!.record(s, 1);
        return !q.poolSlow(1000);
      }),
    );
  });
});

describe('schema', () => {
  it('bounds maxAttempts to 2-5 and checks status names, methods and backoff order', () => {
    const problems = (extra: Record<string, unknown>): string[] => {
      const r = poolSchema.safeParse({ name: 'p', match: { services: ['*'] }, ...extra });
      return r.success ? [] : r.error.issues.map((i) => i.path.join('.'));
    };
    expect(problems({ retry: { maxAttempts: 6 } })).toEqual(['retry.maxAttempts']);
    expect(problems({ hedging: { maxAttempts: 1 } })).toEqual(['hedging.maxAttempts']);
    expect(problems({ retry: { retryableStatusCodes: ['UNAVAILABLE', 'NOPE'] } })).toEqual(['retry.retryableStatusCodes.1']);
    expect(problems({ retry: { retryableStatusCodes: ['OK'] } })).toEqual(['retry.retryableStatusCodes.0']);
    expect(problems({ retry: { retryableStatusCodes: [] } })).toEqual(['retry.retryableStatusCodes']);
    expect(problems({ retry: { initialBackoffMs: 100, maxBackoffMs: 50 } })).toEqual(['retry.maxBackoffMs']);
    expect(problems({ hedging: { methods: ['a.B/Get', 'bad method'] } })).toEqual(['hedging.methods.1']);
    expect(problems({ hedging: { methods: [] } })).toEqual(['hedging.methods']);
    expect(problems({ retryBudget: { percent: 101 } })).toEqual(['retryBudget.percent']);
    expect(problems({ retry: {}, hedging: {}, retryBudget: {} })).toEqual([]);
  });
});
