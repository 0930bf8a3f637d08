/**
 * A queueing model of the seed stall (issue 26), for the questions the real benches are too
 * noisy to answer: 20 s rounds on two shared cores see four stalls each, and plain least_conn's
 * own p99 moves by a third from one round to the next. The model runs the product's own pure
 * decisions over simulated time, so it can run for minutes of load, many times, with the same
 * service times for every variant (common random numbers):
 *
 *  - least_conn picks with `pickLeastConn` (picker/least-conn.ts), the pool's `pickExcept` rule
 *    for hedges;
 *  - hedges are planned by `planHedge` (tail/hedge-plan.ts) with `CallPolicy` (the delay, fixed
 *    or adaptive, and the pool-slow rule over its LatencyWindow) and its `RetryBudget`;
 *  - hedge losers a silent backend has not answered count as its load for UNACKED_HOLD_MS, as
 *    pool/backend.ts counts them.
 *
 * What is modelled rather than real: the backends are test/fixtures/echo-backend.ts as the seed
 * stall runs it (4 slots, exponential 10 ms service, a FIFO queue; the third frozen 1.5 s every
 * 5 s; a frozen backend reads nothing until it thaws, runs its due timers before it reads the
 * cancels that came meanwhile, and never serves a call cancelled while it queued); calls arrive
 * at a fixed rate as bench/load-generator.ts sends them, with 2 s deadlines; the balancer adds no
 * time of its own; with `--workers N` each worker counts its own streams and hedges its own
 * calls, over one latency window and one budget (the primary's).
 *
 * One more variant is not a product setting but a bound: "oracle" is least_conn that knows when
 * a freeze begins and sends the frozen backend nothing until it ends, with no hedge delay and no
 * extra attempt. Only the calls already there when the freeze begins are caught (about 0.08% of
 * calls, inside what a p99.9 of 200 ms allows). No policy that rescues the frozen backend's calls
 * can serve the others better than that: whatever it takes off the frozen backend, the two steady
 * ones must carry while they are at 97.5% of their capacity.
 *
 *   node dist/bench/stall-model.js [--rate 780] [--workers 1] [--seconds 100] [--seeds 6] [--variants a,b]
 */
import type { HedgingPolicyConfig, PoolConfig } from '#config';
import { pickLeastConn } from '../apps/balancer/src/picker/least-conn';
import { UNACKED_HOLD_MS } from '../apps/balancer/src/pool/backend';
import { CallPolicy } from '../apps/balancer/src/tail/call-policy';
import { planHedge } from '../apps/balancer/src/tail/hedge-plan';
import { seededRandom } from '../test/fixtures/seeded-random';
import { DEADLINE_MS, PHASE_MS, SERVICE_MS, SLOTS, STALL_EVERY_MS, STALL_MS } from './seed-stall';

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};

/** The backend that stalls (the third, as in the benches). */
const FROZEN = 2;
/** The load generator's client connections (bench/hedge-safety.ts opens 4). */
const CONNECTIONS = 4;
/** Simulated load before the measured window, ending at the same phase as the benches' windows. */
const WARMUP_MS = 8 * STALL_EVERY_MS + PHASE_MS;

const FIXED = { maxAttempts: 2, delayMs: 50, nonFatalStatusCodes: ['UNAVAILABLE'], methods: ['*'] };
const VARIANTS: Record<string, { hedging?: object; oracle?: boolean }> = {
  least_conn: {},
  'hedging 50 ms': { hedging: FIXED },
  'hedging adaptive': { hedging: { ...FIXED, adaptiveDelay: { percentile: 97, minMs: 10 } } },
  oracle: { oracle: true },
};

/** Events in time order; equal times in the order they were scheduled. */
class Agenda {
  private readonly heap: { t: number; seq: number; fn: () => void }[] = [];
  private seq = 0;
  now = 0;
  at(t: number, fn: () => void): void {
    const h = this.heap;
    h.push({ t, seq: this.seq++, fn });
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (h[p]!.t < h[i]!.t || (h[p]!.t === h[i]!.t && h[p]!.seq < h[i]!.seq)) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }
  run(): void {
    const h = this.heap;
    while (h.length > 0) {
      const top = h[0]!;
      const last = h.pop()!;
      if (h.length > 0) {
        h[0] = last;
        for (let i = 0; ; ) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          const less = (a: number, b: number): boolean => h[a]!.t < h[b]!.t || (h[a]!.t === h[b]!.t && h[a]!.seq < h[b]!.seq);
          if (l < h.length && less(l, m)) m = l;
          if (r < h.length && less(r, m)) m = r;
          if (m === i) break;
          [h[m], h[i]] = [h[i]!, h[m]!];
          i = m;
        }
      }
      this.now = top.t;
      top.fn();
    }
  }
}

interface Attempt {
  call: Call;
  backend: View;
  sentAt: number;
  /** Cancelled by the balancer (the backend learns of it when it next reads). */
  cancelled: boolean;
  /** Holding a service slot at the backend. */
  serving: boolean;
  /** Counted in the balancer's active streams. */
  open: boolean;
}
interface Call {
  start: number;
  worker: number;
  attempts: Attempt[];
  done: boolean;
}

/** A modelled Echo backend: SLOTS service slots, a FIFO queue, and (the FROZEN one) its freezes. */
class Server {
  private busy = 0;
  private readonly queue: Attempt[] = [];
  private readonly service: () => number;

  constructor(
    readonly index: number,
    private readonly agenda: Agenda,
    seed: number,
    /** The server sent its answer (response headers) for `a` at `t`. */
    private readonly answer: (a: Attempt, t: number) => void,
  ) {
    const r = seededRandom(seed * 7919 + index * 104_729 + 1);
    this.service = () => -Math.log(1 - r()) * SERVICE_MS;
  }

  /** When this server next reads or runs anything, from `t`: at once, or when its freeze ends. */
  thawed(t: number): number {
    if (this.index !== FROZEN) return t;
    const begun = Math.floor(t / STALL_EVERY_MS) * STALL_EVERY_MS;
    return t < begun + STALL_MS ? begun + STALL_MS : t;
  }
  frozenAt(t: number): boolean {
    return this.thawed(t) > t;
  }

  /** The call's HEADERS reach the server (it reads them when it can). */
  receive(a: Attempt): void {
    const t = this.thawed(a.sentAt);
    this.agenda.at(t, () => {
      if (a.cancelled) return;
      if (this.busy < SLOTS) this.serve(a, t);
      else this.queue.push(a);
    });
  }
  private serve(a: Attempt, t: number): void {
    this.busy++;
    a.serving = true;
    const done = this.thawed(t + this.service());
    this.agenda.at(done, () => {
      if (!a.serving) return; // cancelled in service: its slot was freed then
      a.serving = false;
      this.free(done);
      this.answer(a, done);
    });
  }
  private free(t: number): void {
    this.busy--;
    while (this.busy < SLOTS && this.queue.length > 0) {
      const next = this.queue.shift()!;
      if (!next.cancelled) this.serve(next, t);
    }
  }
  /** The RST_STREAM the balancer sent at `t`, read when the server can: a queued call is never served, one in service frees its slot. */
  reset(a: Attempt, t: number): void {
    const seen = this.thawed(t);
    this.agenda.at(seen, () => {
      if (!a.serving) return;
      a.serving = false;
      this.free(seen);
    });
  }
}

/** One balancer process's view of one backend: the fields pool/backend.ts keeps. Each worker has its own. */
class View {
  readonly weight = 1;
  private active = 0;
  private awaiting = 0;
  private silentSince = 0;
  private unacked = 0;
  private unackedAt = -Infinity;

  constructor(
    readonly server: Server,
    private readonly agenda: Agenda,
  ) {}

  get activeStreams(): number {
    const now = this.agenda.now;
    return this.active + (this.unacked > 0 && now - this.unackedAt < UNACKED_HOLD_MS ? this.unacked : 0);
  }
  latencyMs(): number {
    return NaN;
  }
  silentMs(now: number): number {
    return this.awaiting === 0 ? 0 : now - this.silentSince;
  }

  send(a: Attempt): void {
    this.active++;
    if (this.awaiting++ === 0) this.silentSince = a.sentAt;
    a.open = true;
    this.server.receive(a);
  }
  /** The balancer cancels the attempt at `t` (`lostUnanswered`: it lost a hedge before this backend answered it). */
  cancel(a: Attempt, t: number, lostUnanswered: boolean): void {
    a.cancelled = true;
    this.close(a, false);
    if (lostUnanswered) {
      this.unacked++;
      this.unackedAt = t;
    }
    this.server.reset(a, t);
  }
  /** The balancer's counts, once per attempt. */
  close(a: Attempt, answered: boolean): void {
    if (!a.open) return;
    a.open = false;
    this.active--;
    this.awaiting--;
    if (answered) {
      this.unacked = 0;
      this.silentSince = this.agenda.now;
    }
  }
}

interface ModelResult {
  calls: number;
  p50: number;
  p99: number;
  p999: number;
  errors: number;
  /** Attempts sent per call. */
  attemptsPerCall: number;
}

function simulate(variant: string, rate: number, seconds: number, seed: number, workerCount: number): ModelResult {
  const v = VARIANTS[variant];
  if (v === undefined) throw new Error(`unknown variant ${variant}`);
  const agenda = new Agenda();
  const servers = [0, 1, 2].map((i) => new Server(i, agenda, seed, (a, t) => answered(a, t)));
  // Each worker counts its own streams (as --workers N does); the policy, its latency window and
  // its budget are one per balancer (the primary shares them).
  const workers = Array.from({ length: workerCount }, (_, w) => ({ views: servers.map((s) => new View(s, agenda)), scores: new Float64Array(servers.length), tieBreak: seededRandom(seed * 31 + 7 + w) }));
  const policy = v.hedging ? CallPolicy.of({ hedging: v.hedging as HedgingPolicyConfig } as unknown as PoolConfig)! : null;
  const rule = policy?.hedging ?? null;
  const measureFrom = WARMUP_MS;
  const measureTo = WARMUP_MS + seconds * 1000;
  const latencies: number[] = [];
  let errors = 0;
  let calls = 0;
  let attempts = 0;

  const pick = (worker: number, now: number, except: readonly View[]): View | undefined => {
    const { views, scores, tieBreak } = workers[worker]!;
    const candidates = views.filter((b) => !except.includes(b) && !(v.oracle && b.server.frozenAt(now)));
    return except.length === 0 ? pickLeastConn(candidates, tieBreak, candidates.length === views.length ? scores : undefined) : pickLeastConn(candidates, tieBreak);
  };
  const send = (call: Call, b: View, now: number): void => {
    const a: Attempt = { call, backend: b, sentAt: now, cancelled: false, serving: false, open: false };
    call.attempts.push(a);
    attempts++;
    b.send(a);
  };
  const finish = (call: Call, ms: number, failed: boolean): void => {
    call.done = true;
    if (call.start >= measureFrom && call.start < measureTo) {
      latencies.push(ms);
      if (failed) errors++;
    }
  };
  const answered = (a: Attempt, t: number): void => {
    const call = a.call;
    a.backend.close(a, true);
    policy?.headerLatency?.record(t - a.sentAt, t);
    if (call.done) return;
    finish(call, t - call.start, false);
    for (const other of call.attempts) if (other !== a && other.open) other.backend.cancel(other, t, true);
  };

  const hedge = (call: Call, now: number): void => {
    if (call.done || rule === null || policy === null) return;
    const tried = call.attempts.map((a) => a.backend);
    const candidate = call.attempts.length >= rule.maxAttempts ? undefined : pick(call.worker, now, tried);
    const waitingOn = call.attempts.find((a) => a.open)?.backend;
    const plan = planHedge({ rule, attempts: call.attempts.length, candidate, waitingOn, replacing: false, poolSlow: policy.poolSlow(now), waitedMs: now - call.start, now });
    if (plan.kind === 'skip' || !policy.budget.tryWithdraw(now)) return;
    send(call, plan.to, now);
    if (call.attempts.length < rule.maxAttempts) agenda.at(now + policy.hedgeDelayMs(now), () => hedge(call, agenda.now));
  };

  const interval = 1000 / rate;
  const total = Math.ceil((measureTo + DEADLINE_MS) / interval);
  for (let k = 0; k < total; k++) {
    const start = k * interval;
    agenda.at(start, () => {
      // Calls go round the client's connections; the primary hands connections round the workers.
      const call: Call = { start, worker: (k % CONNECTIONS) % workerCount, attempts: [], done: false };
      calls++;
      policy?.budget.deposit(start);
      const b = pick(call.worker, start, []);
      if (b === undefined) return;
      send(call, b, start);
      if (policy !== null) agenda.at(start + policy.hedgeDelayMs(start), () => hedge(call, agenda.now));
      agenda.at(start + DEADLINE_MS, () => {
        if (call.done) return;
        finish(call, DEADLINE_MS, true);
        for (const a of call.attempts) if (a.open) a.backend.cancel(a, agenda.now, false);
      });
    });
  }
  agenda.run();
  latencies.sort((a, b) => a - b);
  const q = (p: number): number => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]! * 10) / 10;
  return { calls: latencies.length, p50: q(0.5), p99: q(0.99), p999: q(0.999), errors, attemptsPerCall: Math.round((attempts / calls) * 1000) / 1000 };
}

function main(): void {
  const rate = Number(arg('rate', '780'));
  const seconds = Number(arg('seconds', '100'));
  const seeds = Number(arg('seeds', '6'));
  const workerCount = Number(arg('workers', '1'));
  const variants = arg('variants', Object.keys(VARIANTS).join(',')).split(',');
  process.stdout.write(`seed stall model: ${rate} calls/s, ${workerCount} worker(s), ${seconds} s measured per run, ${seeds} seeds; p50 / p99 / p99.9 ms (attempts per call, errors)\n`);
  const p99s = new Map<string, number[]>();
  for (let seed = 1; seed <= seeds; seed++) {
    const cells = variants.map((name) => {
      const r = simulate(name, rate, seconds, seed, workerCount);
      (p99s.get(name) ?? p99s.set(name, []).get(name)!).push(r.p99);
      return `${name}: ${r.p50} / ${r.p99} / ${r.p999} (${r.attemptsPerCall}, ${r.errors})`;
    });
    process.stdout.write(`seed ${seed}  ${cells.join('  |  ')}\n`);
  }
  const base = p99s.get(variants[0]!)!;
  for (const name of variants.slice(1)) {
    const mine = p99s.get(name)!;
    const ratios = mine.map((p, i) => p / base[i]!);
    const notWorse = ratios.filter((r) => r <= 1).length;
    process.stdout.write(`${name}: p99 / ${variants[0]}'s p99 ${ratios.map((r) => r.toFixed(2)).join(', ')}; no worse in ${notWorse} of ${ratios.length}\n`);
  }
}

main();
