/**
 * ProxiedCall over fake streams (as undici tests its client over a mock pool): the call's
 * lifecycle decided with a scripted clock (jest's fake timers) and no network. The client's
 * stream and the backends' streams are EventEmitters that record what the call does to them;
 * the pool and its backends are the real ones, their connections replaced by the fakes.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { EventEmitter } from 'node:events';
import type * as http2 from 'node:http2';
import { poolSchema } from '#config';
import { Backend } from '../pool/backend';
import { Pool } from '../pool/pool';
import { DEFAULT_UPSTREAM_OPTIONS } from '../upstream/upstream-sessions';
import { ProxiedCall, type CallObserver } from './proxied-call';

const CANCEL = 8;

/** The client's stream: records the response, data and trailers the call sends. */
class FakeDown extends EventEmitter {
  closed = false;
  destroyed = false;
  writableEnded = false;
  headersSent = false;
  responded: Record<string, unknown> | null = null;
  written: Buffer[] = [];
  trailers: Record<string, unknown> | null = null;
  paused = false;
  private waitForTrailers = false;

  respond(headers: Record<string, unknown>, options: { endStream?: boolean; waitForTrailers?: boolean } = {}): void {
    this.responded = headers;
    this.headersSent = true;
    this.waitForTrailers = options.waitForTrailers === true;
    if (options.endStream) this.closeNow();
  }
  write(chunk: Buffer): boolean {
    this.written.push(chunk);
    return true;
  }
  end(): void {
    this.writableEnded = true;
    if (this.waitForTrailers) queueMicrotask(() => this.emit('wantTrailers'));
    else this.closeNow();
  }
  sendTrailers(t: Record<string, unknown>): void {
    this.trailers = t;
    this.closeNow();
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  /** The client resets the stream. */
  reset(): void {
    this.emit('aborted');
    this.closeNow();
  }
  private closeNow(): void {
    if (this.closed) return;
    this.closed = true;
    queueMicrotask(() => this.emit('close'));
  }
}

/** A backend's stream: records what the call writes, and whether it was cancelled. */
class FakeUp extends EventEmitter {
  written: Buffer[] = [];
  ended = false;
  writableEnded = false;
  closed = false;
  destroyed = false;
  pending = false;
  rstCode: number | undefined = undefined;
  session = {};
  constructor(readonly headers: http2.OutgoingHttpHeaders) {
    super();
  }
  write(chunk: Buffer): boolean {
    this.written.push(chunk);
    return true;
  }
  end(): void {
    this.ended = this.writableEnded = true;
  }
  pause(): void {}
  resume(): void {}
  close(code: number): void {
    if (this.closed) return;
    this.closed = true;
    this.rstCode = code;
    queueMicrotask(() => this.emit('close'));
  }
  /** The backend answers: headers, then a message and trailers (or only trailers). */
  answer(message: Buffer | null, status = 0): void {
    if (message === null) {
      this.emit('response', { ':status': 200, 'grpc-status': String(status) }, 0x1);
    } else {
      this.emit('response', { ':status': 200, 'content-type': 'application/grpc' }, 0);
      this.emit('data', message);
      this.emit('trailers', { 'grpc-status': String(status) });
      this.emit('end');
    }
    this.rstCode = 0;
    this.closed = true;
    queueMicrotask(() => this.emit('close'));
  }
}

interface Harness {
  pool: Pool;
  backends: Backend[];
  /** Streams opened on each backend, in order. */
  ups: FakeUp[][];
  events: string[];
  ended: ProxiedCall[];
  call(timeoutMs?: number): { call: ProxiedCall; down: FakeDown };
}

function harness(extra: Record<string, unknown> = {}, n = 2): Harness {
  const config = poolSchema.parse({ name: 'p', match: { services: ['*'] }, backends: Array.from({ length: n }, (_, i) => ({ address: `127.0.0.1:${i + 1}` })), ...extra });
  const backends = config.backends.map((b) => new Backend('p', b.address, b, DEFAULT_UPSTREAM_OPTIONS));
  const ups: FakeUp[][] = backends.map(() => []);
  backends.forEach((b, i) => {
    const upstream = b.upstream as unknown as { request: unknown; cancel: unknown };
    upstream.request = (headers: http2.OutgoingHttpHeaders, cb: (err: null, s: FakeUp) => void) => {
      const up = new FakeUp(headers);
      ups[i]!.push(up);
      cb(null, up);
    };
    upstream.cancel = (up: FakeUp) => up.close(CANCEL);
  });
  const pool = new Pool(config, backends);
  const events: string[] = [];
  const ended: ProxiedCall[] = [];
  const observer: CallObserver = {
    callEnded: (c) => ended.push(c),
    resetEarly: () => events.push('resetEarly'),
    attemptSent: (_c, kind) => events.push(`attempt:${kind}`),
    budgetExhausted: (_c, kind) => events.push(`budget:${kind}`),
    hedgeSkipped: (_c, why) => events.push(`hedgeSkipped:${why}`),
    streamOpened: () => events.push('streamOpened'),
  };
  let first = true;
  const random = (): number => {
    first = !first;
    return 0;
  };
  return {
    pool,
    backends,
    ups,
    events,
    ended,
    call(timeoutMs) {
      const down = new FakeDown();
      const headers = { ':path': '/pkg.Svc/Get', ':method': 'POST', 'content-type': 'application/grpc' };
      const call = new ProxiedCall({ retryBufferBytes: 1 << 16, maxAttempts: 3, random }, observer, down as unknown as http2.ServerHttp2Stream, headers, { ...headers }, pool, performance.now());
      call.start(timeoutMs);
      return { call, down };
    },
  };
}

const msg = Buffer.from([0, 0, 0, 0, 2, 0x0a, 0]);
const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe('ProxiedCall (fake streams, scripted clock)', () => {
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000, doNotFake: ['queueMicrotask', 'nextTick', 'setImmediate'] });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('relays one unary call: request bytes up, response, data and the backend\'s trailers down; every count back to 0', async () => {
    const h = harness();
    const { call, down } = h.call();
    const up = h.ups[0]![0]!;
    expect(up.headers[':path']).toBe('/pkg.Svc/Get');
    expect(h.backends[0]!.openStreams).toBe(1);
    down.emit('data', msg);
    down.emit('end');
    expect(up.written).toEqual([msg]);
    expect(up.ended).toBe(true);
    up.answer(msg, 0);
    await flush();
    expect(down.responded).toMatchObject({ ':status': 200 });
    expect(down.written).toEqual([msg]);
    expect(down.trailers).toEqual({ 'grpc-status': '0' });
    expect(h.ended).toEqual([call]);
    expect(call.status).toBe(0);
    expect(h.backends.map((b) => b.openStreams)).toEqual([0, 0]);
  });

  it('once its streams have closed, neither refers to the call or its attempt (node keeps closed streams a while; the call must not go with them)', async () => {
    const h = harness({ hedging: { maxAttempts: 2, delayMs: 50, nonFatalStatusCodes: ['UNAVAILABLE'], methods: ['*'] } });
    const { call, down } = h.call();
    // Hedged, so the loser's stream closes too (cancelled).
    jest.advanceTimersByTime(60);
    const [first] = h.ups[0]!;
    const [second] = h.ups[1]!;
    expect(second).toBeDefined();
    down.emit('end');
    first!.answer(msg, 0);
    await flush();
    expect(h.ended).toEqual([call]);
    const refersToCall = (stream: object): boolean =>
      Object.getOwnPropertySymbols(stream).some((sym) => {
        const v = (stream as Record<symbol, unknown>)[sym];
        return v === call || (typeof v === 'object' && v !== null && (v as { call?: unknown }).call === call);
      });
    expect(refersToCall(down)).toBe(false);
    expect(refersToCall(first!)).toBe(false);
    expect(second!.closed).toBe(true);
    expect(refersToCall(second!)).toBe(false);
  });

  it('a deadline ends the call DEADLINE_EXCEEDED and cancels its upstream stream', async () => {
    const h = harness();
    const { call, down } = h.call(100);
    jest.advanceTimersByTime(99);
    expect(down.responded).toBeNull();
    jest.advanceTimersByTime(1);
    await flush();
    expect(down.responded).toMatchObject({ 'grpc-status': '4' });
    expect(h.ups[0]![0]!.rstCode).toBe(CANCEL);
    expect(call.status).toBe(4);
    expect(h.backends[0]!.openStreams).toBe(0);
  });

  it('a client reset before the answer cancels the backend\'s stream (RST_STREAM CANCEL) and ends the call CANCELLED', async () => {
    const h = harness();
    const { call, down } = h.call();
    down.reset();
    await flush();
    expect(h.ups[0]![0]!.rstCode).toBe(CANCEL);
    expect(call.status).toBe(1);
    expect(h.ended).toEqual([call]);
    expect(h.backends[0]!.openStreams).toBe(0);
  });

  it('hedging: after the delay a stuck backend is hedged; the winner answers, the loser is cancelled and still counts as its backend\'s load', async () => {
    const h = harness({ hedging: { maxAttempts: 2, delayMs: 50, methods: ['*'] } });
    const { call, down } = h.call();
    down.emit('data', msg);
    down.emit('end');
    jest.advanceTimersByTime(49);
    expect(h.ups[1]).toHaveLength(0);
    jest.advanceTimersByTime(1);
    expect(h.events).toContain('attempt:hedge');
    const hedge = h.ups[1]![0]!;
    expect(hedge.written).toEqual([msg]); // the request, replayed
    expect(hedge.headers['grpc-previous-rpc-attempts']).toBe('1');
    hedge.answer(msg, 0);
    await flush();
    expect(call.hedgeWon).toBe(true);
    expect(h.ups[0]![0]!.rstCode).toBe(CANCEL);
    expect(down.trailers).toEqual({ 'grpc-status': '0' });
    expect(h.backends[0]!.openStreams).toBe(0);
    expect(h.backends[0]!.activeStreams).toBe(1); // the loser it never answered
  });

  it('hedging, whole pool slow: the backend waited on keeps answering others, so no hedge goes out', async () => {
    const h = harness({ hedging: { maxAttempts: 2, delayMs: 50, methods: ['*'] } }, 2);
    h.call(); // waits on backend 1
    jest.advanceTimersByTime(40);
    // Backend 1 answers another call 40 ms in: it is slow, not stuck.
    const now = performance.now();
    h.backends[0]!.callStarted(now - 30);
    h.backends[0]!.answered(30, now);
    h.backends[0]!.callReleased(true);
    jest.advanceTimersByTime(10);
    expect(h.events).toContain('hedgeSkipped:backend_answering');
    expect(h.events).not.toContain('attempt:hedge');
    expect(h.ups[1]).toHaveLength(0);
  });

  it('hedging: a non-fatal status sends the next attempt at once, without waiting for the hedge delay; a fatal one ends the call', async () => {
    const h = harness({ hedging: { maxAttempts: 3, delayMs: 1000, nonFatalStatusCodes: ['UNAVAILABLE'], methods: ['*'] }, retryBudget: { percent: 100, minPerSecond: 100 } }, 3);
    const { call, down } = h.call();
    down.emit('end');
    h.ups[0]![0]!.answer(null, 14); // UNAVAILABLE, trailers-only: non-fatal
    await flush();
    const second = [...h.ups[1]!, ...h.ups[2]!];
    expect(second).toHaveLength(1); // no timer advanced: sent at once, to another backend
    second[0]!.answer(null, 13); // INTERNAL: fatal
    await flush();
    expect(h.ups[1]!.length + h.ups[2]!.length).toBe(1); // no third attempt
    expect(down.responded).toMatchObject({ 'grpc-status': '13' });
    expect(call.status).toBe(13);
    expect(h.backends.map((b) => b.openStreams)).toEqual([0, 0, 0]);
  });

  it('ending an open stream (rebalance): UNAVAILABLE trailers to the client, RST_STREAM CANCEL to the backend', async () => {
    const h = harness({ streams: { maxAgeMs: 60000 } });
    const { call, down } = h.call();
    const up = h.ups[0]![0]!;
    up.emit('response', { ':status': 200, 'content-type': 'application/grpc' }, 0);
    await flush();
    expect(h.events).toContain('streamOpened');
    expect(h.backends[0]!.streams.size).toBe(1);
    expect(call.endStream(14, 'rebalanced: test')).toBe(true);
    await flush();
    expect(down.trailers).toMatchObject({ 'grpc-status': '14', 'grpc-message': 'rebalanced: test' });
    expect(up.rstCode).toBe(CANCEL);
    expect(h.backends[0]!.streams.size).toBe(0);
    expect(call.endStream(14, 'again')).toBe(false);
  });
});
