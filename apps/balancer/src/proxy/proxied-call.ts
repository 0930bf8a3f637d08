/**
 * The lifecycle of one proxied gRPC call: one client (downstream) HTTP/2 stream relayed to a
 * backend (upstream) stream, bytes untouched, both directions with backpressure.
 *
 *   pick backend ─ attempt (activeStreams++) ─ upstream stream ─ relay ─ stream closes ─ activeStreams--
 *
 * Design, after undici's client-h2 and grpc-js's RetryingCall: every listener is attached in one
 * place per stream; each attempt (one upstream stream on one backend) holds one of its
 * backend's active streams and gives it back in one idempotent function, called from every path
 * that ends the attempt (normal end, client cancel, backend reset or crash, deadline, proxy
 * error, failed connect, a lost hedge), so a count can neither leak nor go negative.
 *
 * Until the call is committed (response headers forwarded, or more request bytes than the retry
 * buffer holds) the request bytes are kept, and a further attempt replays them:
 * - transparent retry: a call the backend cannot have processed (connect failed, REFUSED_STREAM,
 *   a GOAWAY that excluded the stream, a stream never sent) goes to another backend, at most
 *   twice, whatever the pool's policy;
 * - the pool's `retry` (gRPC A6 retryPolicy): a retryable status without a response, or an
 *   attempt lost after it was sent, is tried again after a jittered exponential backoff (or the
 *   backend's grpc-retry-pushback-ms), with grpc-previous-rpc-attempts, within the retry budget;
 * - the pool's `hedging` (A6 hedgingPolicy) for listed methods: while no attempt has response
 *   headers, another attempt goes to another backend every hedge delay. The first response
 *   headers win and every other attempt is cancelled at once (RST_STREAM CANCEL); a non-fatal
 *   status lets the others go on, any other status ends the call.
 *
 * Status: the backend's grpc-status passes through untouched (trailers or trailers-only). The
 * balancer speaks only when the backend cannot: UNAVAILABLE naming pool and backend,
 * DEADLINE_EXCEEDED when the client's grpc-timeout runs out first, RESOURCE_EXHAUSTED when every
 * backend is at the pool's stream limit for longer than its queue lets a call wait.
 */
import * as http2 from 'node:http2';
import type { Backend } from '../pool/backend';
import type { Pool, PoolPick } from '../pool/pool';
import type { Random } from '../picker';
import type { HedgingRule } from '../tail/call-policy';
import { planRetry } from '../tail/retry-plan';
import { planHedge, type HedgeSkip } from '../tail/hedge-plan';
import type { UpstreamError } from '../upstream/upstream-sessions';
import { Attempt, FIRST, HEDGE, listenDown, listenUp, RETRY, TRANSPARENT, type CallEvents, type Kind } from './attempt';
import { codeName, respondTrailersOnly, Status, statusTrailers } from './grpc-status';
import type { ListedStream, StreamList } from '../streams/stream-list';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_FLAG_END_STREAM } = http2.constants;

export interface CallSettings {
  /** Request bytes kept for a retry or hedge; a call that sent more before its response is committed to its attempt. */
  readonly retryBufferBytes: number;
  /** Attempts per call for transparent retries, the first included. */
  readonly maxAttempts: number;
  readonly random: Random;
}

/** Why a call made another attempt: a hedge, a policy retry, or a transparent retry of an unprocessed call. */
export type AttemptKind = 'hedge' | 'retry' | 'transparent';

/** Told of what a call does; callEnded once per call, when the client's stream has closed. */
export interface CallObserver {
  callEnded(call: ProxiedCall): void;
  /**
   * The client reset the stream before its call was answered, and not at its own deadline: what
   * a rapid-reset flood does (see PrematureResets). Told at once, while the client's frames are
   * still being read, before the stream's close.
   */
  resetEarly(call: ProxiedCall): void;
  /** A further attempt was sent; `reason` is the status name that caused a retry, else the kind. */
  attemptSent(call: ProxiedCall, kind: AttemptKind, reason: string): void;
  /** A retry or hedge was due but the pool's retry budget had none left. */
  budgetExhausted(call: ProxiedCall, kind: 'hedge' | 'retry'): void;
  /** A hedge was due but the pool was slow as a whole, or no backend could answer sooner (tail/hedge-plan.ts). */
  hedgeSkipped(call: ProxiedCall, reason: HedgeSkip): void;
  /** The response began on a pool with `streams` settings (streams/stream-governor.ts). */
  streamOpened(call: ProxiedCall): void;
}


export class ProxiedCall implements CallEvents, ListedStream {
  /** grpc-status of the call as the client saw it; -1 while unknown. */
  status = -1;
  /** The backend of the committed attempt, else of the last one. */
  backend: Backend | undefined;
  /** Attempts sent, of every kind. */
  attempts = 0;
  /** The call is under its pool's hedging policy. */
  hedging: HedgingRule | null = null;
  /** A hedge (not the first attempt) gave the answer. */
  hedgeWon = false;

  /** @internal The attempt whose response goes to the client. */
  committed: Attempt | null = null;
  /** Attempts in flight (usually one). */
  private live: Attempt[] = [];
  /** Backends tried so far, when a further attempt needs another one. */
  private tried: Backend[] | null = null;
  /** Attempts counted by the pool's retry or hedging policy (the first, retries, hedges). */
  private policyAttempts = 0;
  private transparentRetries = 0;
  /** Policy retries so far without pushback, for the backoff's exponent. */
  private backoffs = 0;
  /** Request bytes kept for a retry, or to send once an upstream stream exists. */
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  /** Not committed: a further attempt is still possible. */
  private retriable = true;
  private downEnded = false;
  private downPaused = false;
  private responded = false;
  /** The outcome is decided (status sent or being sent); later upstream events change nothing. */
  private settled = false;
  private finished = false;
  private trailers: http2.OutgoingHttpHeaders | null = null;
  private deadline: NodeJS.Timeout | null = null;
  /** The next hedge, or the retry after a backoff. */
  private timer: NodeJS.Timeout | null = null;
  /** Set while the call waits in its pool's queue for a backend below maxStreamsPerBackend. */
  private wake: (() => boolean) | null = null;
  private queueTimer: NodeJS.Timeout | null = null;
  private timeoutMs: number | undefined;
  /** On its backend's list of open streams once the response began (streams/stream-list.ts). */
  streamPrev: ListedStream | null = null;
  streamNext: ListedStream | null = null;
  streamList: StreamList | null = null;
  committedAt = 0;
  private maxAgeTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly settings: CallSettings,
    private readonly observer: CallObserver,
    readonly down: http2.ServerHttp2Stream,
    /** The client's request headers, as received. */
    readonly headers: http2.IncomingHttpHeaders,
    /** What goes to the backend: `headers` without connection-specific fields. */
    private readonly upstreamHeaders: http2.IncomingHttpHeaders,
    readonly pool: Pool,
    readonly startedAt: number,
  ) {}

  /**
   * `deferPick`: pick and open the upstream stream only after the client's frames already read
   * have been handled, so that a stream the client resets in the same read is never sent on.
   * (node's client sends queued HEADERS before a RST_STREAM, so cancelling a stream that was
   * opened in the same tick still costs the backend a stream.) The data plane asks for it on
   * connections that have reset streams early; the common case picks at once.
   */
  start(timeoutMs: number | undefined, deferPick = false): void {
    this.timeoutMs = timeoutMs;
    const down = this.down;
    listenDown(this, down);
    if (timeoutMs !== undefined) {
      this.deadline = setTimeout(() => this.fail(Status.DEADLINE_EXCEEDED, `deadline of ${timeoutMs} ms exceeded ${this.where()}`), timeoutMs);
    }
    const policy = this.pool.policy;
    if (policy !== null) {
      policy.budget.deposit(this.startedAt);
      this.hedging = policy.hedgingFor(this.headers[':path'] ?? '');
    }
    if (!deferPick) {
      this.attempt(this.pool.pick(this.settings.random, performance.now()), FIRST);
      return;
    }
    setImmediate(() => {
      if (this.finished || this.settled || down.closed || down.destroyed) return; // reset meanwhile: nothing picked, nothing sent
      this.attempt(this.pool.pick(this.settings.random, performance.now()), FIRST);
    });
  }

  /** @internal (stream handlers) */
  onDownAborted(): void {
    // Reset before any answer, and not because its own deadline ran out (80% of it, for clocks).
    if (this.responded || this.settled) return;
    if (this.timeoutMs !== undefined && performance.now() - this.startedAt >= this.timeoutMs * 0.8) return;
    this.observer.resetEarly(this);
  }

  private where(): string {
    return this.backend ? `in pool "${this.pool.name}" (backend ${this.backend.address})` : `in pool "${this.pool.name}"`;
  }

  private attempt(pick: PoolPick, kind: Kind): void {
    if (pick.kind === 'busy') return this.waitForSlot(kind);
    if (pick.kind === 'unavailable') return this.failUnavailable();
    this.attemptOn(pick.backend, kind);
  }

  private failUnavailable(): void {
    const p = this.pool;
    const why = p.unavailableReasons();
    if (p.failure !== null) return this.fail(Status.UNAVAILABLE, `pool "${p.name}" cannot be served on this balancer: ${p.failure}`);
    this.fail(Status.UNAVAILABLE, `pool "${p.name}": no healthy backend (${p.backends.length} configured, none available)${why ? `: ${why}` : ''}`);
  }

  private attemptOn(backend: Backend, kind: Kind): void {
    this.attempts++;
    this.backend = backend;
    const now = performance.now();
    const a = new Attempt(this, backend, kind, now);
    this.live.push(a);
    backend.callStarted(now);
    let headers = this.upstreamHeaders;
    if (kind !== TRANSPARENT) {
      if (++this.policyAttempts > 1) headers = this.laterAttemptHeaders(now);
      if (this.hedging !== null) {
        (this.tried ??= []).push(backend);
        if (this.policyAttempts < this.hedging.maxAttempts && this.timer === null) {
          this.timer = setTimeout(sendHedge, this.pool.policy!.hedgeDelayMs(now), this);
        }
      }
    }
    try {
      backend.upstream.request(headers, (err, stream) => this.onUpstream(a, err, stream));
    } catch (err) {
      this.attemptFailed(a, `could not take the call (${(err as Error).message})`, false);
    }
  }

  /** A6: later attempts say how many came before, and carry what is left of the deadline. */
  private laterAttemptHeaders(now: number): http2.IncomingHttpHeaders {
    const h: http2.IncomingHttpHeaders = { ...this.upstreamHeaders, 'grpc-previous-rpc-attempts': String(this.policyAttempts - 1) };
    if (this.timeoutMs !== undefined) h['grpc-timeout'] = `${Math.max(1, Math.ceil(this.timeoutMs - (now - this.startedAt)))}m`;
    return h;
  }

  /** @internal (timer) The hedge delay passed with no response headers: one more attempt, on another backend (`replacing`: in place of an attempt that failed with a non-fatal status, not gated). */
  hedge(replacing = false): boolean {
    this.timer = null;
    const rule = this.hedging;
    if (rule === null || !this.retriable || this.settled || this.finished) return false;
    const now = performance.now();
    // A hedge (not a replacement for an attempt that failed) only to a backend that can answer
    // sooner than the attempt in flight: never more load on a pool that has none to spare.
    // No pick once the attempts are spent (the planner says skip then anyway).
    const candidate = this.policyAttempts >= rule.maxAttempts ? undefined : this.pool.pickExcept(this.tried ?? NONE, this.settings.random);
    const policy = this.pool.policy!;
    const plan = planHedge({ rule, attempts: this.policyAttempts, candidate, waitingOn: this.live[0]?.backend, replacing, poolSlow: !replacing && policy.poolSlow(now), waitedMs: now - this.startedAt, now });
    if (plan.kind === 'skip') {
      if (plan.why !== 'attempts spent' && plan.why !== 'no other backend') this.observer.hedgeSkipped(this, plan.why);
      return false;
    }
    if (!policy.budget.tryWithdraw(now)) {
      this.observer.budgetExhausted(this, 'hedge');
      return false;
    }
    this.observer.attemptSent(this, 'hedge', 'hedge');
    this.attemptOn(plan.to, HEDGE);
    return true;
  }

  /** @internal (stream handlers) The client's stream wants its trailers: the backend's, or a status of our own. */
  sendTrailers(): void {
    this.down.sendTrailers(this.trailers ?? statusTrailers(Status.INTERNAL, 'backend ended the response without a grpc-status'));
  }

  /** Ends the call with the balancer's own status (for a failure outside the call's lifecycle). */
  abort(code: number, message: string): void {
    this.fail(code, message);
  }

  /** Gives the attempt's backend its stream slot back. Idempotent: the one place activeStreams goes down. */
  private release(a: Attempt): void {
    if (a.holding) {
      a.holding = false;
      a.backend.callReleased(a.answered);
      if (this.pool.queued > 0) this.pool.wakeOne();
    }
  }

  /** Ends an attempt that lost (or failed): out of `live`, its stream cancelled unless already over. */
  private drop(a: Attempt): void {
    if (a.done) return;
    a.done = true;
    const i = this.live.indexOf(a);
    if (i >= 0) this.live.splice(i, 1);
    const up = a.up;
    if (up === null) this.release(a);
    else if (!a.ended || !up.writableEnded) a.backend.upstream.cancel(up); // its close releases
  }

  /** This attempt's response goes to the client: every other attempt is cancelled, the request copy dropped. */
  private commit(a: Attempt): void {
    this.committed = a;
    this.backend = a.backend;
    if (a.kind === HEDGE) this.hedgeWon = true;
    this.clearTimer();
    if (this.live.length > 1) {
      const now = performance.now();
      for (const other of this.live.slice()) {
        if (other === a) continue;
        if (!other.answered) other.backend.lostUnanswered(now);
        this.drop(other);
      }
    }
    this.dropBuffer();
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  /** Every backend is at maxStreamsPerBackend: wait in the pool's bounded queue, or fail at once. */
  private waitForSlot(kind: Kind): void {
    const p = this.pool;
    const busy = `pool "${p.name}": every available backend is at its limit of ${p.maxStreamsPerBackend} concurrent streams`;
    const wake = (): boolean => {
      if (this.settled || this.finished) return false;
      const next = p.pick(this.settings.random, performance.now());
      if (next.kind === 'busy') {
        p.enqueue(wake, true); // the slot went elsewhere: first in line again
        return true;
      }
      this.leaveQueue();
      if (next.kind === 'unavailable') this.failUnavailable();
      else this.attemptOn(next.backend, kind);
      return true;
    };
    if (!p.enqueue(wake)) {
      this.fail(Status.RESOURCE_EXHAUSTED, p.queueTimeoutMs === 0 ? busy : `${busy}, and ${p.maxQueuedCalls} calls are already waiting`);
      return;
    }
    this.wake = wake;
    this.queueTimer = setTimeout(() => this.fail(Status.RESOURCE_EXHAUSTED, `${busy}; waited ${p.queueTimeoutMs} ms`), p.queueTimeoutMs);
  }

  private leaveQueue(): void {
    if (this.wake === null) return;
    this.pool.dequeue(this.wake);
    this.wake = null;
    clearTimeout(this.queueTimer!);
  }

  private onUpstream(a: Attempt, err: UpstreamError | null, up: http2.ClientHttp2Stream | undefined): void {
    if (a.done || !a.holding) {
      // The attempt lost, or the call ended, while the connection was being set up: its slot
      // was released then.
      if (up !== undefined) a.backend.upstream.cancel(up);
      return;
    }
    if (err?.unforwardable) {
      this.drop(a);
      this.fail(Status.INTERNAL, `pool "${this.pool.name}": ${err.message}`);
      return;
    }
    if (err !== null || up === undefined) {
      this.attemptFailed(a, err?.message ?? 'no stream', err?.retryable ?? false);
      return;
    }
    a.up = up;
    listenUp(a, up);

    for (const chunk of this.buffered) up.write(chunk);
    if (this.retriable && this.bufferedBytes > this.settings.retryBufferBytes) this.commit(a); // held past the bound while connecting
    if (this.downEnded) up.end();
    else this.resumeDown();
  }

  /** @internal (stream handlers) */
  onDownData(chunk: Buffer): void {
    if (this.settled) return; // the outcome is decided; what the client still sends goes nowhere
    if (this.retriable) {
      this.buffered.push(chunk);
      this.bufferedBytes += chunk.length;
      if (this.bufferedBytes > this.settings.retryBufferBytes) {
        const withStream = this.live.find((a) => a.up !== null);
        if (withStream === undefined) {
          // Waiting for a connection (or a retry): hold the bytes, and stop reading past the bound.
          this.pauseDown();
          return;
        }
        this.commit(withStream); // too big to replay: this attempt is the call
      }
    }
    const live = this.live;
    for (let i = 0; i < live.length; i++) {
      const up = live[i]!.up;
      if (up !== null && !up.write(chunk)) this.pauseDown();
    }
  }

  /** @internal (stream handlers) */
  onDownEnd(): void {
    this.downEnded = true;
    const live = this.live;
    for (let i = 0; i < live.length; i++) live[i]!.up?.end();
  }

  private pauseDown(): void {
    this.downPaused = true;
    this.down.pause();
  }

  /** @internal (stream handlers) */
  resumeDown(): void {
    if (this.downPaused) {
      this.downPaused = false;
      this.down.resume();
    }
  }

  /** No further attempt from here on: the backend has (or may have) processed the call. */
  private dropBuffer(): void {
    this.retriable = false;
    if (this.buffered.length > 0) this.buffered = [];
    this.bufferedBytes = 0;
  }

  /** @internal (stream handlers) */
  onResponse(a: Attempt, headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader, flags: number): void {
    const now = performance.now();
    const ms = now - a.startedAt;
    if (a.holding && !a.answered) {
      a.answered = true;
      a.backend.answered(ms, now);
    }
    this.pool.policy?.headerLatency?.record(ms, now);
    if (this.settled || this.down.destroyed || this.down.closed) return;
    if (flags & NGHTTP2_FLAG_END_STREAM) {
      // Trailers-only: a status and no response.
      a.ended = true;
      this.attemptEnded(a, Number(headers['grpc-status'] ?? Status.UNKNOWN), headers, '');
      return;
    }
    if (this.committed !== a) this.commit(a);
    this.responded = true;
    this.down.respond(headers, { waitForTrailers: true });
    this.committedAt = now;
    a.backend.streams.add(this);
    if (this.pool.streams !== null) this.observer.streamOpened(this);
  }

  /** Ends an open stream with the balancer's status (rebalance, maximum age, drain timeout); false if it is over already. */
  endStream(code: number, message: string): boolean {
    if (this.settled || this.finished) return false;
    this.fail(code, message);
    return true;
  }

  /** (streams/stream-governor.ts) The stream's maximum age runs out in `ms`. */
  setMaxAge(ms: number, expire: () => void): void {
    this.clearMaxAge();
    this.maxAgeTimer = setTimeout(expire, ms);
  }

  clearMaxAge(): void {
    if (this.maxAgeTimer === null) return;
    clearTimeout(this.maxAgeTimer);
    this.maxAgeTimer = null;
  }

  /**
   * An attempt ended with a status and no response: from the backend (trailers-only `headers`),
   * or the balancer's UNAVAILABLE for an attempt lost after it was sent. The call goes on (a
   * non-fatal status while hedging, a retryable one under the retry policy) or that status is
   * its answer.
   */
  private attemptEnded(a: Attempt, code: number, headers: http2.IncomingHttpHeaders | null, message: string): void {
    const policy = this.pool.policy;
    if (policy !== null && code !== Status.OK && this.retriable && !this.finished) {
      const hedging = this.hedging;
      if (hedging !== null) {
        if (hedging.nonFatal & (1 << code)) {
          this.drop(a);
          if (this.live.length > 0) return; // the other attempts go on
          this.clearTimer();
          if (this.hedge(true)) return; // the next one at once, in place of the one that failed
          // No attempt left to make: this status is the answer.
        }
      } else if (policy.retry !== null) {
        const now = performance.now();
        const plan = planRetry({
          rule: policy.retry,
          code,
          pushbackHeader: headers?.['grpc-retry-pushback-ms'],
          attempts: this.policyAttempts,
          backoffs: this.backoffs,
          elapsedMs: now - this.startedAt,
          timeoutMs: this.timeoutMs,
          random: this.settings.random,
        });
        if (plan.kind === 'retry') {
          if (policy.budget.tryWithdraw(now)) {
            this.drop(a);
            (this.tried ??= []).push(a.backend);
            this.backoffs = plan.backoffRestarts ? 0 : this.backoffs + 1;
            this.observer.attemptSent(this, 'retry', codeName(code));
            this.timer = setTimeout(retryNow, plan.delayMs, this);
            return;
          }
          this.observer.budgetExhausted(this, 'retry');
        }
      }
    }
    if (headers !== null) {
      this.commit(a);
      this.settled = true;
      this.responded = true;
      this.status = code;
      this.down.respond(headers, { endStream: true });
    } else {
      this.backend = a.backend;
      this.fail(code, message);
    }
  }

  /** @internal (timer) A policy retry after its backoff: another backend when there is one. */
  retry(): void {
    this.timer = null;
    if (this.settled || this.finished) return;
    const other = this.pool.pickExcept(this.tried ?? NONE, this.settings.random);
    if (other !== undefined) this.attemptOn(other, RETRY);
    else this.attempt(this.pool.pick(this.settings.random, performance.now()), RETRY);
  }

  /** @internal (stream handlers) */
  onUpData(a: Attempt, chunk: Buffer): void {
    if (this.settled) return;
    if (!this.down.write(chunk)) a.up!.pause();
  }

  /** @internal (stream handlers) */
  onUpTrailers(trailers: http2.IncomingHttpHeaders): void {
    if (this.settled) return;
    this.trailers = trailers;
    this.status = Number(trailers['grpc-status'] ?? Status.UNKNOWN);
  }

  /** @internal (stream handlers) */
  onUpEnd(): void {
    // Without trailers the backend did not finish the call: its connection went away. The
    // stream's close, which follows, turns that into UNAVAILABLE.
    if (this.settled || !this.responded || this.trailers === null) return;
    this.settled = true;
    if (!this.down.writableEnded) this.down.end();
  }

  /** @internal (stream handlers) */
  onUpClose(a: Attempt, up: http2.ClientHttp2Stream): void {
    this.release(a);
    if (a.done || this.settled || this.finished) return;
    const code = up.rstCode ?? 0;
    if (!this.responded) {
      // Never sent, or refused by the backend (REFUSED_STREAM, also what streams above a
      // GOAWAY's last-stream-id get): the backend did not process it.
      const unprocessed = up.pending || code === NGHTTP2_REFUSED_STREAM;
      this.attemptFailed(a, `closed the stream before responding (${rstName(code)})`, unprocessed);
    } else {
      const why =
        up.session?.destroyed || up.session?.closed
          ? 'lost its connection'
          : code === 0 && a.ended
            ? 'ended the response without a grpc-status'
            : `reset the stream (${rstName(code)})`;
      this.fail(Status.UNAVAILABLE, `backend ${a.backend.address} in pool "${this.pool.name}" ${why} before the call finished`);
    }
  }

  /**
   * An attempt failed before any response: retried transparently when the backend cannot have
   * processed it, else ended UNAVAILABLE (which the pool's policy may retry or hedge past).
   */
  private attemptFailed(a: Attempt, reason: string, unprocessed: boolean): void {
    const failed = a.backend;
    this.drop(a);
    failed.callFailed();
    if (this.settled || this.finished) return;
    if (unprocessed && this.live.length > 0) return; // a hedge carries on
    if (unprocessed && this.retriable && this.transparentRetries < this.settings.maxAttempts - 1) {
      const tried = (this.tried ??= []);
      if (!tried.includes(failed)) tried.push(failed);
      // Another backend if there is one; else the same one again if it still takes calls (a
      // refused stream goes to another of its sessions; an unreachable backend is not available).
      const next = this.pool.pickExcept(tried, this.settings.random) ?? (failed.available ? failed : undefined);
      if (next !== undefined) {
        this.transparentRetries++;
        this.observer.attemptSent(this, 'transparent', 'transparent');
        this.attemptOn(next, TRANSPARENT);
        return;
      }
    }
    const n = this.attempts;
    this.attemptEnded(a, Status.UNAVAILABLE, null, `pool "${this.pool.name}": backend ${failed.address} ${reason}${n > 1 ? ` after ${n} attempts` : ''}`);
  }

  /** Ends the call with a status of the balancer's own, and cancels every attempt in flight. */
  private fail(code: number, message: string): void {
    if (this.settled || this.finished) return;
    this.settled = true;
    this.status = code;
    this.leaveQueue();
    this.clearTimer();
    this.endAttempts();
    if (!this.responded) {
      respondTrailersOnly(this.down, code, message);
    } else {
      this.trailers = statusTrailers(code, message);
      if (!this.down.writableEnded) this.down.end();
    }
  }

  /** Cancels the attempts still in flight (the committed one only if its backend has not ended it). */
  private endAttempts(): void {
    const live = this.live;
    if (live.length === 0) return;
    for (const a of live.slice()) if (!a.ended || a.up === null) this.drop(a);
  }

  /** @internal (stream handlers) */
  onDownClose(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.deadline !== null) clearTimeout(this.deadline);
    this.streamList?.remove(this);
    if (this.maxAgeTimer !== null) this.clearMaxAge();
    this.clearTimer();
    this.leaveQueue();
    // The client cancelled or reset, or the call is over: cancel what the backends still run.
    this.endAttempts();
    if (this.status < 0) this.status = Status.CANCELLED;
    this.observer.callEnded(this);
  }
}

const NONE: readonly Backend[] = [];
const sendHedge = (call: ProxiedCall): boolean => call.hedge();
const retryNow = (call: ProxiedCall): void => call.retry();

function rstName(code: number): string {
  switch (code) {
    case 0:
      return 'NO_ERROR';
    case 1:
      return 'PROTOCOL_ERROR';
    case 2:
      return 'INTERNAL_ERROR';
    case 7:
      return 'REFUSED_STREAM';
    case 8:
      return 'CANCEL';
    case 11:
      return 'ENHANCE_YOUR_CALM';
    default:
      return `HTTP/2 error ${code}`;
  }
}
