/**
 * UpstreamSessions against a real node:http2 server on loopback: request bodies stay open
 * whatever the method, sessions fill up to the backend's stream limit before another opens, a
 * GOAWAY moves new streams to a new session, and a refused connect is a retryable error with
 * the backend out of service until it answers again. No clock is asserted: each test waits on
 * the server's own events.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { DEFAULT_UPSTREAM_OPTIONS, UpstreamError, UpstreamSessions } from './upstream-sessions';

interface Received {
  method: string;
  body: string;
}

/** A server that answers every stream once its body has ended, echoing the method and the body. */
async function server(settings: http2.Settings = {}): Promise<{ address: string; server: http2.Http2Server; received: Received[]; sessions: http2.ServerHttp2Session[] }> {
  const received: Received[] = [];
  const sessions: http2.ServerHttp2Session[] = [];
  const s = http2.createServer({ settings });
  s.on('session', (session) => sessions.push(session));
  s.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const r = { method: String(headers[':method']), body: Buffer.concat(chunks).toString() };
      received.push(r);
      stream.respond({ ':status': 200 });
      stream.end(`${r.method} ${r.body}`);
    });
    stream.on('error', () => {});
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { address: `127.0.0.1:${(s.address() as AddressInfo).port}`, server: s, received, sessions };
}

function open(u: UpstreamSessions, headers: http2.OutgoingHttpHeaders): Promise<http2.ClientHttp2Stream> {
  return new Promise((resolve, reject) => u.request(headers, (err, stream) => (err ? reject(err) : resolve(stream!))));
}

function responseOf(stream: http2.ClientHttp2Stream): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks).toString()));
    stream.on('error', reject);
  });
}

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function sessionsTo(address: string, options = {}): UpstreamSessions {
  const u = new UpstreamSessions(address, { ...DEFAULT_UPSTREAM_OPTIONS, keepaliveIntervalMs: 0, ...options }, () => {});
  cleanups.push(() => u.close());
  return u;
}

function serve(s: http2.Http2Server, sessions: http2.ServerHttp2Session[]): void {
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy();
        s.close(() => resolve());
      }),
  );
}

describe('UpstreamSessions', () => {
  it('keeps a POST stream open for its body until the caller ends it (node:http2 default, no options passed)', async () => {
    const b = await server();
    serve(b.server, b.sessions);
    const u = sessionsTo(b.address);
    const stream = await open(u, { ':method': 'POST', ':path': '/pkg.Svc/Method', 'content-type': 'application/grpc' });
    stream.write('first,');
    // The server has not answered: the request side is still open after a write.
    expect(b.received).toEqual([]);
    stream.end('second');
    expect(await responseOf(stream)).toBe('POST first,second');
  });

  it('keeps the stream open for any other method too, where node would end a GET at once', async () => {
    const b = await server();
    serve(b.server, b.sessions);
    const u = sessionsTo(b.address);
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const stream = await open(u, { ':method': method, ':path': '/pkg.Svc/Method' });
      stream.end(`body of ${method}`);
      expect(await responseOf(stream)).toBe(`${method} body of ${method}`);
    }
  });

  it('fills a session up to the backend\'s SETTINGS_MAX_CONCURRENT_STREAMS before it opens another', async () => {
    const b = await server({ maxConcurrentStreams: 2 });
    serve(b.server, b.sessions);
    const u = sessionsTo(b.address);
    // Wait for the first session's SETTINGS, so its limit is known.
    const first = await open(u, { ':method': 'POST', ':path': '/a' });
    await new Promise<void>((resolve) => (first.session!.remoteSettings.maxConcurrentStreams === 2 ? resolve() : first.session!.once('remoteSettings', () => resolve())));
    const second = await open(u, { ':method': 'POST', ':path': '/b' });
    expect(u.sessionCount).toBe(1);
    expect(second.session).toBe(first.session);
    const third = await open(u, { ':method': 'POST', ':path': '/c' });
    expect(u.sessionCount).toBe(2);
    expect(third.session).not.toBe(first.session);
    const answers = [first, second, third].map((s) => responseOf(s));
    for (const s of [first, second, third]) s.end('x');
    expect(await Promise.all(answers)).toEqual(['POST x', 'POST x', 'POST x']);
  });

  it('sends no new stream on a session that received GOAWAY, and lets its stream in flight finish', async () => {
    const b = await server();
    serve(b.server, b.sessions);
    const u = sessionsTo(b.address);
    const inFlight = await open(u, { ':method': 'POST', ':path': '/a' });
    const goaway = new Promise<void>((resolve) => inFlight.session!.once('goaway', () => resolve()));
    b.sessions[0]!.goaway(http2.constants.NGHTTP2_NO_ERROR, 1);
    await goaway;
    const next = await open(u, { ':method': 'POST', ':path': '/b' });
    expect(next.session).not.toBe(inFlight.session);
    const answers = [responseOf(inFlight), responseOf(next)];
    inFlight.end('old');
    next.end('new');
    expect(await Promise.all(answers)).toEqual(['POST old', 'POST new']);
  });

  it('reports a refused connect as retryable (the backend saw nothing) and leaves service until it answers again', async () => {
    // A port that was just free: bind one, note it, close it.
    const probe = http2.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    let changes = 0;
    const u = new UpstreamSessions(`127.0.0.1:${port}`, { ...DEFAULT_UPSTREAM_OPTIONS, keepaliveIntervalMs: 0 }, () => changes++);
    cleanups.push(() => u.close());
    const err = await open(u, { ':method': 'POST', ':path': '/a' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).retryable).toBe(true);
    expect(u.available).toBe(false);
    expect(changes).toBeGreaterThan(0);
    expect(u.lastError).not.toBe('');
  });
});
