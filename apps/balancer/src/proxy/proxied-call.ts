/**
 * The lifecycle of one proxied gRPC call: one client (downstream) HTTP/2 stream relayed to one
 * backend (upstream) stream, bytes untouched, both directions with backpressure.
 *
 *   pick backend ─ activeStreams++ ─ open upstream stream ─ relay ─ upstream closes ─ activeStreams--
 *
 * Design, after undici's client-h2: every listener is attached in one place per stream; each
 * handler checks that its stream is still the current attempt and that the call is not settled;
 * the backend's active-stream count is released by one idempotent function, called from every
 * path that ends an attempt (normal end, client cancel, backend reset or crash, deadline, proxy
 * error, failed connect), so the count can neither leak nor go negative.
 *
 * Transparent retry: until the backend sends response headers, the request bytes already sent
 * are kept (up to a bound). If the backend could not have processed the call (connect failed,
 * REFUSED_STREAM, a GOAWAY that excluded the stream, a stream never sent), the call is replayed on
 * another backend, at most twice. Once headers arrive the call is committed and the copy dropped.
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
import type { UpstreamError } from '../upstream/upstream-sessions';
import { respondTrailersOnly, Status, statusTrailers } from './grpc-status';

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_FLAG_END_STREAM } = http2.constants;

export interface CallSettings {
  /** Request bytes kept for a transparent retry; a call that sent more before its response is not retried. */
  readonly retryBufferBytes: number;
  /** Attempts per call, the first included. */
  readonly maxAttempts: number;
  readonly random: Random;
}

/** Told once per call, when the client's stream has closed. */
export interface CallObserver {
  callEnded(call: ProxiedCall): void;
  /**
   * The client reset the stream before its call was answered, and not at its own deadline: what
   * a rapid-reset flood does (see PrematureResets). Told at once, while the client's frames are
   * still being read, before the stream's close.
   */
  resetEarly(call: ProxiedCall): void;
}

const noop = (): void => {};

export class ProxiedCall {
  /** grpc-status of the call as the client saw it; -1 while unknown. */
  status = -1;
  /** The backend of the current (last) attempt. */
  backend: Backend | undefined;
  attempts = 0;

  /** @internal The upstream stream of the current attempt. */
  up: http2.ClientHttp2Stream | null = null;
  /** The current attempt holds one of backend.activeStreams. */
  private holding = false;
  private tried: Backend[] | null = null;
  /** Request bytes kept for a retry, or to send once the upstream stream exists. */
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  /** A transparent retry is still possible. */
  private retriable = true;
  private downEnded = false;
  private downPaused = false;
  private upEnded = false;
  private responded = false;
  /** The outcome is decided (status sent or being sent); later upstream events change nothing. */
  private settled = false;
  private finished = false;
  private trailers: http2.OutgoingHttpHeaders | null = null;
  private deadline: NodeJS.Timeout | null = null;
  /** Set while the call waits in its pool's queue for a backend below maxStreamsPerBackend. */
  private wake: (() => boolean) | null = null;
  private queueTimer: NodeJS.Timeout | null = null;
  private timeoutMs: number | undefined;

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
    const down = this.down as Tagged<http2.ServerHttp2Stream>;
    down[CALL] = this;
    down.on('aborted', DownHandlers.aborted);
    down.on('data', DownHandlers.data);
    down.on('end', DownHandlers.end);
    down.on('drain', DownHandlers.drain);
    down.on('wantTrailers', DownHandlers.wantTrailers);
    down.on('close', DownHandlers.close);
    down.on('error', noop);
    if (timeoutMs !== undefined) {
      this.deadline = setTimeout(() => this.fail(Status.DEADLINE_EXCEEDED, `deadline of ${timeoutMs} ms exceeded ${this.where()}`), timeoutMs);
    }
    if (!deferPick) {
      this.attempt(this.pool.pick(this.settings.random, performance.now()));
      return;
    }
    setImmediate(() => {
      if (this.finished || this.settled || down.closed || down.destroyed) return; // reset meanwhile: nothing picked, nothing sent
      this.attempt(this.pool.pick(this.settings.random, performance.now()));
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

  private attempt(pick: PoolPick): void {
    if (pick.kind === 'busy') return this.waitForSlot();
    if (pick.kind === 'unavailable') return this.failUnavailable();
    this.attemptOn(pick.backend);
  }

  private failUnavailable(): void {
    const p = this.pool;
    const why = p.unavailableReasons();
    this.fail(Status.UNAVAILABLE, `pool "${p.name}": no healthy backend (${p.backends.length} configured, none available)${why ? `: ${why}` : ''}`);
  }

  private attemptOn(backend: Backend): void {
    this.attempts++;
    this.backend = backend;
    backend.callStarted();
    this.holding = true;
    try {
      backend.upstream.request(this.upstreamHeaders, (err, stream) => this.onUpstream(err, stream));
    } catch (err) {
      this.retryOrFail(`could not take the call (${(err as Error).message})`, false);
    }
  }

  /** @internal (stream handlers) The client's stream wants its trailers: the backend's, or a status of our own. */
  sendTrailers(): void {
    this.down.sendTrailers(this.trailers ?? statusTrailers(Status.INTERNAL, 'backend ended the response without a grpc-status'));
  }

  /** Ends the call with the balancer's own status (for a failure outside the call's lifecycle). */
  abort(code: number, message: string): void {
    this.fail(code, message);
  }

  /** Gives the backend its stream slot back. Idempotent: the one place activeStreams goes down. */
  private release(): void {
    if (this.holding) {
      this.holding = false;
      this.backend!.callReleased();
      if (this.pool.queued > 0) this.pool.wakeOne();
    }
  }

  /** Every backend is at maxStreamsPerBackend: wait in the pool's bounded queue, or fail at once. */
  private waitForSlot(): void {
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
      else this.attemptOn(next.backend);
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

  private onUpstream(err: UpstreamError | null, up: http2.ClientHttp2Stream | undefined): void {
    if (!this.holding) {
      // The client left, or the call failed, while the connection was being set up: fail() and
      // onDownClose already released the slot of an attempt that had no stream yet.
      if (up !== undefined) this.backend?.upstream.cancel(up);
      return;
    }
    if (err?.unforwardable) {
      this.release();
      this.fail(Status.INTERNAL, `pool "${this.pool.name}": ${err.message}`);
      return;
    }
    if (err !== null || up === undefined) {
      this.retryOrFail(err?.message ?? 'no stream', err?.retryable ?? false);
      return;
    }
    this.up = up;
    (up as Tagged<http2.ClientHttp2Stream>)[CALL] = this;
    up.on('response', UpHandlers.response);
    up.on('trailers', UpHandlers.trailers);
    up.on('data', UpHandlers.data);
    up.on('end', UpHandlers.end);
    up.on('drain', UpHandlers.drain);
    up.on('close', UpHandlers.close);
    up.on('error', noop);

    for (const chunk of this.buffered) up.write(chunk);
    if (!this.retriable) this.dropBuffer();
    if (this.downEnded) up.end();
    else this.resumeDown();
  }

  /** @internal (stream handlers) */
  onDownData(chunk: Buffer): void {
    if (this.settled) return; // the outcome is decided; what the client still sends goes nowhere
    const up = this.up;
    if (up === null) {
      // Waiting for a connection: hold the bytes, and stop reading past the retry bound.
      this.buffered.push(chunk);
      this.bufferedBytes += chunk.length;
      if (this.bufferedBytes >= this.settings.retryBufferBytes) this.pauseDown();
      return;
    }
    if (this.retriable) {
      this.bufferedBytes += chunk.length;
      if (this.bufferedBytes <= this.settings.retryBufferBytes) this.buffered.push(chunk);
      else this.dropBuffer();
    }
    if (!up.write(chunk)) this.pauseDown();
  }

  /** @internal (stream handlers) */
  onDownEnd(): void {
    this.downEnded = true;
    this.up?.end();
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

  /** No retry from here on: the backend has (or may have) processed the call. */
  private dropBuffer(): void {
    this.retriable = false;
    if (this.buffered.length > 0) this.buffered = [];
    this.bufferedBytes = 0;
  }

  /** @internal (stream handlers) */
  onResponse(headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader, flags: number): void {
    this.dropBuffer();
    const now = performance.now();
    this.backend!.latency.observe(now - this.startedAt, now);
    if (this.settled || this.down.destroyed || this.down.closed) return;
    this.responded = true;
    if (flags & NGHTTP2_FLAG_END_STREAM) {
      // Trailers-only: status and headers in one frame.
      this.settled = true;
      this.status = Number(headers['grpc-status'] ?? Status.UNKNOWN);
      this.down.respond(headers, { endStream: true });
    } else {
      this.down.respond(headers, { waitForTrailers: true });
    }
  }

  /** @internal (stream handlers) */
  onUpData(chunk: Buffer): void {
    if (this.settled) return;
    if (!this.down.write(chunk)) this.up!.pause();
  }

  /** @internal (stream handlers) */
  onUpTrailers(trailers: http2.IncomingHttpHeaders): void {
    if (this.settled) return;
    this.trailers = trailers;
    this.status = Number(trailers['grpc-status'] ?? Status.UNKNOWN);
  }

  /** @internal (stream handlers) */
  onUpEnd(): void {
    this.upEnded = true;
    // Without trailers the backend did not finish the call: its connection went away. The
    // stream's close, which follows, turns that into UNAVAILABLE.
    if (this.settled || !this.responded || this.trailers === null) return;
    this.settled = true;
    if (!this.down.writableEnded) this.down.end();
  }

  /** @internal (stream handlers) */
  onUpClose(up: http2.ClientHttp2Stream): void {
    if (up !== this.up) return;
    this.release();
    if (this.settled || this.finished) return;
    const code = up.rstCode ?? 0;
    if (!this.responded) {
      // Never sent, or refused by the backend (REFUSED_STREAM, also what streams above a
      // GOAWAY's last-stream-id get): the backend did not process it.
      const unprocessed = up.pending || code === NGHTTP2_REFUSED_STREAM;
      this.retryOrFail(`closed the stream before responding (${rstName(code)})`, unprocessed);
    } else {
      const why =
        up.session?.destroyed || up.session?.closed
          ? 'lost its connection'
          : code === 0 && this.upEnded
            ? 'ended the response without a grpc-status'
            : `reset the stream (${rstName(code)})`;
      this.fail(Status.UNAVAILABLE, `backend ${this.backend!.address} in pool "${this.pool.name}" ${why} before the call finished`);
    }
  }

  private retryOrFail(reason: string, retryable: boolean): void {
    const failed = this.backend!;
    this.release();
    this.up = null;
    failed.callFailed();
    if (this.settled || this.finished) return;
    if (retryable && this.retriable && this.attempts < this.settings.maxAttempts) {
      (this.tried ??= []).push(failed);
      // Another backend if there is one; else the same one again if it still takes calls (a
      // refused stream goes to another of its sessions; an unreachable backend is not available).
      const next = this.pool.pickExcept(this.tried, this.settings.random) ?? (failed.available ? failed : undefined);
      if (next !== undefined) {
        this.attemptOn(next);
        return;
      }
    }
    this.fail(Status.UNAVAILABLE, `pool "${this.pool.name}": backend ${failed.address} ${reason}${this.attempts > 1 ? ` after ${this.attempts} attempts` : ''}`);
  }

  /** Ends the call with a status of the balancer's own, and cancels the upstream stream if any. */
  private fail(code: number, message: string): void {
    if (this.settled || this.finished) return;
    this.settled = true;
    this.status = code;
    this.leaveQueue();
    const up = this.up;
    if (up === null) this.release();
    else this.backend!.upstream.cancel(up);
    if (!this.responded) {
      respondTrailersOnly(this.down, code, message);
    } else {
      this.trailers = statusTrailers(code, message);
      if (!this.down.writableEnded) this.down.end();
    }
  }

  /** @internal (stream handlers) */
  onDownClose(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.deadline !== null) clearTimeout(this.deadline);
    this.leaveQueue();
    const up = this.up;
    if (up === null) {
      this.release();
    } else if (!this.upEnded) {
      // The client cancelled or reset: cancel the backend's stream at once. Its close releases.
      this.backend!.upstream.cancel(up);
    }
    if (this.status < 0) this.status = Status.CANCELLED;
    this.observer.callEnded(this);
  }
}

/**
 * The stream listeners, shared by every call: each finds its call through the stream's CALL
 * property instead of closing over it, so a call allocates no listener closures (12 fewer
 * objects per call, which is most of what an idle call costs the JS heap). Upstream handlers
 * ignore events of a stream that is no longer the call's current attempt.
 */
const CALL = Symbol('switchboard.call');
type Tagged<S> = S & { [CALL]?: ProxiedCall };

const DownHandlers = {
  aborted(this: Tagged<http2.ServerHttp2Stream>): void {
    this[CALL]!.onDownAborted();
  },
  data(this: Tagged<http2.ServerHttp2Stream>, chunk: Buffer): void {
    this[CALL]!.onDownData(chunk);
  },
  end(this: Tagged<http2.ServerHttp2Stream>): void {
    this[CALL]!.onDownEnd();
  },
  drain(this: Tagged<http2.ServerHttp2Stream>): void {
    this[CALL]!.up?.resume();
  },
  wantTrailers(this: Tagged<http2.ServerHttp2Stream>): void {
    this[CALL]!.sendTrailers();
  },
  close(this: Tagged<http2.ServerHttp2Stream>): void {
    this[CALL]!.onDownClose();
  },
};

const UpHandlers = {
  response(this: Tagged<http2.ClientHttp2Stream>, headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader, flags: number): void {
    const call = this[CALL]!;
    if (call.up === this) call.onResponse(headers, flags);
  },
  trailers(this: Tagged<http2.ClientHttp2Stream>, trailers: http2.IncomingHttpHeaders): void {
    const call = this[CALL]!;
    if (call.up === this) call.onUpTrailers(trailers);
  },
  data(this: Tagged<http2.ClientHttp2Stream>, chunk: Buffer): void {
    const call = this[CALL]!;
    if (call.up === this) call.onUpData(chunk);
  },
  end(this: Tagged<http2.ClientHttp2Stream>): void {
    const call = this[CALL]!;
    if (call.up === this) call.onUpEnd();
  },
  drain(this: Tagged<http2.ClientHttp2Stream>): void {
    const call = this[CALL]!;
    if (call.up === this) call.resumeDown();
  },
  close(this: Tagged<http2.ClientHttp2Stream>): void {
    this[CALL]!.onUpClose(this);
  },
};

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
