/**
 * HTTP/2 abuse against a real balancer process, frame by frame (test/support/h2-frames.ts):
 * unforwardable headers, rapid reset, header and CONTINUATION floods, odd paths, non-gRPC and
 * HTTP/1 requests, bare and idle connections, connection and stream caps. After each, the
 * balancer is alive, still proxies, and every active-stream count is back to 0. Each case prints
 * what it sent.
 */
import { writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { echoClient } from '../fixtures/echo-proto';
import { countingBackend, type CountingBackend } from '../support/counting-backend';
import { unary, type EchoClient } from '../support/grpc';
import { ErrorCode, Flag, frame, FrameType, grpcData, grpcRequest, headerBlock, rapidResetFlood, RawH2Connection, rstStream } from '../support/h2-frames';
import { killAll, sleep, spawnBackend, startBalancer, waitFor, type BackendProcess, type BalancerProcess } from '../support/processes';

const ECHO = '/switchboard.test.v1.Echo/Unary';

let echo: BackendProcess;
let counting: CountingBackend;
let lb: BalancerProcess;
let client: EchoClient;

const said = (what: string): void => {
  process.stdout.write(`hostile-http2: ${what}\n`);
};

async function countsAreZero(): Promise<void> {
  await waitFor(
    'every active-stream count back to 0',
    async () => (await lb.state()).pools.every((p) => p.backends.every((b) => b.activeStreams === 0)),
    10_000,
  );
}

async function stillServes(): Promise<void> {
  expect(lb.proc.exitCode).toBeNull();
  const r = await unary(client, { payload: Buffer.from('still there') });
  expect(r.error).toBeUndefined();
  await countsAreZero();
}

/** Sends `frames` on a fresh raw connection, waits `ms`, and returns the connection. */
async function rawExchange(bytes: Buffer[], ms = 300): Promise<RawH2Connection> {
  const conn = new RawH2Connection(lb.listen);
  await conn.connected;
  await conn.send(Buffer.concat(bytes));
  await Promise.race([conn.done, sleep(ms)]);
  return conn;
}

/**
 * A call carrying `extra` headers, sent raw (node's client refuses to send these): resolves with
 * whether the counting backend received it and the balancer answered on the stream.
 */
async function callWithRawHeaders(extra: [string, string][]): Promise<{ reachedBackend: boolean; answered: boolean; reset: number | null; goaway: number | null }> {
  const before = counting.streams();
  const conn = await rawExchange([frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequest('/flood.Target/Call', extra))), grpcData(1, Buffer.alloc(0), true)], 500);
  conn.close();
  const rst = conn.on(1).find((f) => f.type === FrameType.RST_STREAM);
  return { reachedBackend: counting.streams() === before + 1, answered: conn.on(1).some((f) => f.type === FrameType.HEADERS), reset: rst ? rst.payload.readUInt32BE(0) : null, goaway: conn.goawayCode };
}

beforeAll(async () => {
  echo = await spawnBackend('h1');
  counting = await countingBackend();
  lb = await startBalancer(
    {
      pools: [
        { name: 'echo', match: { services: ['switchboard.test.v1.Echo'] }, backends: [{ address: echo.address }] },
        { name: 'victim', match: { services: ['flood.Target'] }, backends: [{ address: counting.address }] },
      ],
    },
    ['--first-stream-timeout-ms', '500', '--max-connections', '200'],
  );
  client = echoClient(lb.listen);
}, 30_000);

afterAll(() => {
  client?.close();
  counting?.close();
  killAll();
});

describe('headers a client should not send', () => {
  it('a request with http2-settings (which node lets through) is proxied without it, and the balancer lives', async () => {
    said('HEADERS /flood.Target/Call with http2-settings: AAA');
    expect(await callWithRawHeaders([['http2-settings', 'AAA']])).toEqual({ reachedBackend: true, answered: true, reset: null, goaway: null });
    await stillServes();
  });

  it.each([
    ['keep-alive', 'timeout=5'],
    ['proxy-connection', 'keep-alive'],
    ['te', 'gzip'],
    ['connection', 'close'],
    ['upgrade', 'h2c'],
    ['transfer-encoding', 'chunked'],
  ])('a request with %s: %s is a malformed request (RST_STREAM PROTOCOL_ERROR), and the balancer lives', async (name, value) => {
    said(`HEADERS /flood.Target/Call with ${name}: ${value}`);
    expect(await callWithRawHeaders([[name, value]])).toEqual({ reachedBackend: false, answered: false, reset: ErrorCode.PROTOCOL_ERROR, goaway: null });
    await stillServes();
  });
});

describe('rapid reset (CVE-2023-44487)', () => {
  it('a stream reset in the same read on a suspect connection never reaches the backend', async () => {
    const block = headerBlock(grpcRequest('/flood.Target/Call'));
    const conn = new RawH2Connection(lb.listen);
    await conn.connected;
    // One early reset makes the connection a suspect...
    await conn.send(Buffer.concat([frame(FrameType.HEADERS, Flag.END_HEADERS, 1, block), rstStream(1)]));
    await sleep(200);
    const before = counting.streams();
    // ...then 40 HEADERS + RST_STREAM pairs in one write.
    const pairs: Buffer[] = [];
    for (let id = 3; id < 83; id += 2) pairs.push(frame(FrameType.HEADERS, Flag.END_HEADERS, id, block), rstStream(id));
    said('40 x (HEADERS + RST_STREAM) in one write after one early reset');
    await conn.send(Buffer.concat(pairs));
    await sleep(500);
    expect(counting.streams() - before).toBe(0);
    conn.close();
    await countsAreZero();
  });

  it('a 4 s flood: GOAWAY ENHANCE_YOUR_CALM, counts back to 0, few streams forwarded, a good client keeps >= 99% OK', async () => {
    const atBackend = counting.streams();
    let ok = 0;
    let failed = 0;
    let flooding = true;
    const good = (async () => {
      while (flooding) {
        const r = await unary(client, { payload: Buffer.from('good') }, undefined, { deadline: new Date(Date.now() + 5000) });
        if (r.error) failed++;
        else ok++;
        await sleep(10);
      }
    })();
    const flood = await rapidResetFlood(lb.listen, { connections: 4, durationMs: 4000, maxStreams: 2_000_000, path: '/flood.Target/Call' });
    flooding = false;
    await good;
    const forwarded = counting.streams() - atBackend;
    said(`flood: ${JSON.stringify(flood)}; forwarded to the backend: ${forwarded}; good client ${ok} OK, ${failed} failed`);
    expect(flood.calmedDown).toBeGreaterThan(0);
    expect(flood.goawayCodes[ErrorCode.ENHANCE_YOUR_CALM]).toBe(flood.goaways);
    // About one stream per flooding connection gets through before it is a suspect.
    expect(forwarded).toBeLessThanOrEqual(flood.connections * 2);
    expect(ok / (ok + failed)).toBeGreaterThanOrEqual(0.99);
    await stillServes();
    const metrics = await lb.metrics();
    expect(metrics).toMatch(/switchboard_downstream_rejected_total\{reason="premature_resets"\} [1-9]/);
  }, 30_000);
});

describe('floods and odd frames', () => {
  it('5,000 header fields, a 100 KB header value and a CONTINUATION flood leave it alive', async () => {
    const many: [string, string][] = Array.from({ length: 5000 }, (_, i) => [`x-h${i}`, 'v']);
    said('HEADERS with 5,000 fields');
    (await rawExchange([frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequest(ECHO, many)))])).close();
    said('HEADERS with a 100 KB value');
    (await rawExchange([frame(FrameType.HEADERS, Flag.END_HEADERS, 1, headerBlock(grpcRequest(ECHO, [['x-big', 'a'.repeat(100_000)]])))])).close();
    said('HEADERS without END_HEADERS, then 2,000 CONTINUATION frames of 1 KB');
    const conts = Array.from({ length: 2000 }, () => frame(FrameType.CONTINUATION, 0, 1, headerBlock([['x-c', 'b'.repeat(1000)]])));
    (await rawExchange([frame(FrameType.HEADERS, 0, 1, headerBlock(grpcRequest(ECHO))), ...conts], 500)).close();
    said('DATA on a stream never opened, a WINDOW_UPDATE of 0, RST_STREAM on stream 0');
    (await rawExchange([grpcData(7, Buffer.from('x'), true), frame(FrameType.WINDOW_UPDATE, 0, 0, Buffer.alloc(4)), rstStream(0)])).close();
    await stillServes();
  });

  it('odd paths get UNIMPLEMENTED with a bounded grpc-message', async () => {
    const session = http2.connect(`http://${lb.listen}`);
    try {
      for (const path of ['/', '//', '/a', '/no-slash-method', `/${'x'.repeat(40_000)}/M`, '/ünïcødé.Svc/M']) {
        said(`POST ${path.slice(0, 40)}${path.length > 40 ? `... (${path.length} characters)` : ''}`);
        const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
          req.on('response', resolve);
          req.on('error', reject);
          req.end();
        });
        expect(headers['grpc-status']).toBe('12');
        expect(String(headers['grpc-message']).length).toBeLessThan(400);
      }
    } finally {
      session.close();
    }
    await stillServes();
  });

  it('a gRPC call with a method other than POST (GET, HEAD, DELETE: node sends them without a body; PUT with one) is answered, never left hanging, and gives its slot back', async () => {
    const session = http2.connect(`http://${lb.listen}`);
    try {
      for (const method of ['GET', 'HEAD', 'PUT', 'DELETE']) {
        said(`${method} ${ECHO} with content-type application/grpc`);
        const ended = await new Promise<{ status: number | undefined; grpcStatus: string | undefined }>((resolve) => {
          const req = session.request({ ':method': method, ':path': ECHO, 'content-type': 'application/grpc', te: 'trailers' });
          let headers: http2.IncomingHttpHeaders = {};
          let trailers: http2.IncomingHttpHeaders = {};
          req.on('response', (h) => (headers = h));
          req.on('trailers', (t) => (trailers = t));
          req.on('error', () => {});
          req.on('close', () => resolve({ status: headers[':status'] as number | undefined, grpcStatus: (trailers['grpc-status'] ?? headers['grpc-status']) as string | undefined }));
          req.resume();
          if (!req.writableEnded) req.end(Buffer.from([0, 0, 0, 0, 2, 0x0a, 0]));
        });
        said(`  answered :status ${ended.status} grpc-status ${ended.grpcStatus}`);
        // Whatever the backend makes of the method (grpc-js: UNIMPLEMENTED, or serves a PUT), the client gets a gRPC answer.
        expect(ended.status).toBe(200);
        expect(ended.grpcStatus).toMatch(/^[0-9]+$/);
      }
    } finally {
      session.close();
    }
    await stillServes();
  });

  it('a non-gRPC request gets 415 and an HTTP/1 request is refused', async () => {
    const session = http2.connect(`http://${lb.listen}`);
    const status = await new Promise<number>((resolve, reject) => {
      const req = session.request({ ':method': 'GET', ':path': '/index.html' });
      req.on('response', (h) => resolve(Number(h[':status'])));
      req.on('error', reject);
      req.end();
    });
    session.close();
    expect(status).toBe(415);
    said('GET / HTTP/1.1');
    const reply = await new Promise<string>((resolve) => {
      const socket = net.connect(Number(lb.listen.split(':')[1]), '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      let got = '';
      socket.on('data', (d) => (got += d.toString('latin1')));
      socket.on('close', () => resolve(got));
      socket.on('error', () => resolve(got));
      setTimeout(() => socket.destroy(), 3000);
    });
    expect(reply.startsWith('HTTP/1.1 200')).toBe(false);
    await stillServes();
  });

  it('a connection that sends only the preface, or nothing, is closed after --first-stream-timeout-ms', async () => {
    said('preface + SETTINGS, then silence; and a TCP connection that sends nothing');
    const preface = new RawH2Connection(lb.listen);
    const silent = new RawH2Connection(lb.listen, { preface: false });
    await Promise.all([preface.connected, silent.connected]);
    const started = Date.now();
    await Promise.race([Promise.all([preface.done, silent.done]), sleep(5000)]);
    expect(preface.closed).toBe(true);
    expect(silent.closed).toBe(true);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(await lb.metrics()).toMatch(/switchboard_downstream_rejected_total\{reason="first_stream_timeout"\} [1-9]/);
  });
});

describe('limits', () => {
  it('--max-connections closes connections past the cap; --max-streams answers RESOURCE_EXHAUSTED past it', async () => {
    // One process, so that both caps are whole (with workers each enforces its share: workers.e2e-spec.ts).
    const small = await startBalancer({ pools: [{ name: 'echo', match: { services: ['*'] }, backends: [{ address: echo.address }] }] }, ['--max-connections', '3', '--max-streams', '2', '--workers', '1']);
    const conns = Array.from({ length: 6 }, () => new RawH2Connection(small.listen));
    await Promise.all(conns.map((c) => c.connected.catch(() => undefined)));
    await Promise.race([Promise.all(conns.slice(3).map((c) => c.done)), sleep(3000)]);
    said('6 connections against --max-connections 3');
    expect(conns.filter((c) => c.closed).length).toBeGreaterThanOrEqual(3);
    for (const c of conns) c.close();
    await sleep(100);
    const c = echoClient(small.listen);
    const hanging = [unary(c, { hang: true }, undefined, { deadline: new Date(Date.now() + 3000) }), unary(c, { hang: true }, undefined, { deadline: new Date(Date.now() + 3000) })];
    await sleep(300);
    said('a third call while 2 hang, against --max-streams 2');
    const third = await unary(c, {});
    expect(third.error?.code).toBe(8);
    expect(third.error?.details).toMatch(/limit of 2 calls in flight/);
    await Promise.all(hanging);
    expect((await unary(c, {})).error).toBeUndefined();
    c.close();
    expect(await small.metrics()).toMatch(/switchboard_downstream_rejected_total\{reason="connection_limit"\} [1-9]/);
    await small.stop();
  });
});

describe('a configuration the balancer could not dial', () => {
  it('is refused at start-up and on SIGHUP, and the running revision keeps serving', async () => {
    const bad = { pools: [{ name: 'echo', match: { services: ['*'] }, backends: [{ address: '[127.0.0.1]:80' }] }] };
    said('start with backend [127.0.0.1]:80 (a bracketed IPv4 address)');
    await expect(startBalancer(bad)).rejects.toThrow(/address/);
    const good = await startBalancer({ pools: [{ name: 'echo', match: { services: ['*'] }, backends: [{ address: echo.address }] }] });
    said('SIGHUP with the same bad address');
    const revision = (await good.state()).revision;
    writeFileSync(good.configFile, JSON.stringify(bad));
    good.proc.kill('SIGHUP');
    await waitFor('the rejection logged', () => good.logs.some((l) => l.includes('configuration rejected')));
    expect((await good.state()).revision).toBe(revision);
    const c = echoClient(good.listen);
    expect((await unary(c, {})).error).toBeUndefined();
    c.close();
    await good.stop();
  });
});
