/**
 * The balancer as a transparent gRPC proxy: every call type, metadata, trailers, status details,
 * large and compressed messages, routing, and the errors it generates itself. Real grpc-js
 * clients and backends, the real CLI, 127.0.0.1 only.
 */
import * as http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import { startEchoBackend, type EchoBackend } from '../fixtures/echo-backend';
import { echoClient, loadEcho, CLIENT_OPTIONS, type EchoResponse } from '../fixtures/echo-proto';
import { killAll, startBalancer, type BalancerProcess } from '../support/processes';
import { collect, unary, type EchoClient } from '../support/grpc';

const MiB = 1 << 20;

describe('gRPC proxying', () => {
  let a: EchoBackend;
  let other: EchoBackend;
  let lb: BalancerProcess;
  let client: EchoClient;

  beforeAll(async () => {
    a = await startEchoBackend({ name: 'a' });
    other = await startEchoBackend({ name: 'other' });
    lb = await startBalancer({
      pools: [
        { name: 'echo', match: { services: ['switchboard.test.v1.Echo'] }, backends: [{ address: a.address }] },
        { name: 'other', match: { services: ['switchboard.test.v1.Other'] }, backends: [{ address: other.address }] },
        { name: 'dead', match: { services: ['dead.Service'] }, backends: [{ address: '127.0.0.1:1' }] },
      ],
    });
    client = echoClient(lb.listen);
  });

  afterAll(async () => {
    client?.close();
    await lb?.stop();
    await Promise.all([a?.stop(), other?.stop()]);
    killAll();
  });

  it('relays a unary call with request metadata, response metadata and trailers untouched', async () => {
    const md = new grpc.Metadata();
    md.set('x-echo-text', 'hello');
    md.set('x-echo-data-bin', Buffer.from([0, 255, 1, 254]));
    md.add('x-echo-multi', 'one');
    md.add('x-echo-multi', 'two');
    const r = await unary(client, { payload: Buffer.from('ping') }, md);
    expect(r.error).toBeUndefined();
    expect(r.response!.backend).toBe('a');
    expect(r.response!.payload.toString()).toBe('ping');
    expect(r.metadata!.get('x-echo-text')).toEqual(['hello']);
    expect(r.metadata!.get('x-echo-data-bin')).toEqual([Buffer.from([0, 255, 1, 254])]);
    expect(a.stats.lastMetadata!['x-echo-multi']).toBe('one, two');
    expect(r.trailers!.get('x-trailer-backend')).toEqual(['a']);
  });

  it('passes an error status, its message and grpc-status-details-bin through', async () => {
    const r = await unary(client, { statusCode: grpc.status.NOT_FOUND, statusMessage: 'no such thing: ünïcödé 100%' });
    expect(r.error!.code).toBe(grpc.status.NOT_FOUND);
    expect(r.error!.details).toBe('no such thing: ünïcödé 100%');
    expect(r.error!.metadata.get('x-error-detail-bin')).toEqual([Buffer.from([0, 1, 2, 250, 251, 252])]);
    expect(r.error!.metadata.get('grpc-status-details-bin')).toEqual([Buffer.from('details:a')]);
  });

  it('relays client streaming', async () => {
    const response = await new Promise<EchoResponse>((resolve, reject) => {
      const call = client.ClientStream((err: grpc.ServiceError | null, res: EchoResponse) => (err ? reject(err) : resolve(res)));
      for (let i = 0; i < 100; i++) call.write({ payload: Buffer.alloc(1000, i) });
      call.end();
    });
    expect(response).toMatchObject({ backend: 'a', received: 100, receivedBytes: '100000' });
  });

  it('relays server streaming, including an error status after messages', async () => {
    const ok = await collect(client.ServerStream({ responseCount: 50, responseSize: 100 }));
    expect(ok.status.code).toBe(grpc.status.OK);
    expect(ok.responses).toHaveLength(50);
    const failed = await collect(client.ServerStream({ responseCount: 3, responseSize: 10, statusCode: grpc.status.ABORTED, statusMessage: 'stop' }));
    expect(failed.responses).toHaveLength(3);
    expect(failed.status).toMatchObject({ code: grpc.status.ABORTED, details: 'stop' });
  });

  it('relays bidirectional streaming message by message', async () => {
    const call = client.Bidi();
    const got: EchoResponse[] = [];
    const done = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    for (let i = 1; i <= 20; i++) {
      const next = new Promise<EchoResponse>((resolve) => call.once('data', resolve));
      call.write({ payload: Buffer.from(`m${i}`) });
      got.push(await next); // the answer to each message arrives before the next is sent
    }
    call.end();
    expect((await done).code).toBe(grpc.status.OK);
    expect(got.map((r) => r.payload.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `m${i + 1}`));
    expect(got[19]!.received).toBe(20);
  });

  it('carries 16 MiB messages both ways', async () => {
    const big = Buffer.alloc(16 * MiB, 0x5a);
    const up = await unary(client, { payload: big });
    expect(up.error).toBeUndefined();
    expect(up.response!.payload.equals(big)).toBe(true);
    const down = await unary(client, { responseSize: 16 * MiB + 1 });
    expect(down.response!.payload.length).toBe(16 * MiB + 1);
  });

  it('passes compressed messages through both ways: grpc-encoding and the compressed flag untouched', async () => {
    // A raw HTTP/2 backend that sees exactly what the balancer forwarded and answers with a
    // gzip-compressed message the grpc-js client must decode itself.
    const seen: { encoding?: string; flag?: number } = {};
    const raw = http2.createServer();
    raw.on('stream', (stream, headers) => {
      seen.encoding = String(headers['grpc-encoding']);
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        seen.flag = Buffer.concat(chunks)[0];
        const message = gzipSync(Buffer.concat([Buffer.from([0x0a, 3]), Buffer.from('zip')])); // EchoResponse{payload:"zip"}
        const frame = Buffer.alloc(5 + message.length);
        frame[0] = 1;
        frame.writeUInt32BE(message.length, 1);
        message.copy(frame, 5);
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-encoding': 'gzip' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(frame);
      });
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const rawAddress = `127.0.0.1:${(raw.address() as { port: number }).port}`;
    const lb2 = await startBalancer({ pools: [{ name: 'raw', match: { services: ['*'] }, backends: [{ address: rawAddress }] }] });
    const gzipClient = echoClient(lb2.listen, { 'grpc.default_compression_algorithm': 2 });
    try {
      const r = await unary(gzipClient, { payload: Buffer.alloc(100_000, 0x41) });
      expect(r.error).toBeUndefined();
      expect(r.response!.payload.toString()).toBe('zip');
      expect(seen).toEqual({ encoding: 'gzip', flag: 1 });
    } finally {
      gzipClient.close();
      await lb2.stop();
      raw.close();
    }
  });

  it('routes by service name to the matching pool', async () => {
    const { Other } = loadEcho();
    const otherClient = new Other(lb.listen, grpc.credentials.createInsecure(), CLIENT_OPTIONS) as EchoClient;
    try {
      const r = await unary(otherClient, {});
      expect(r.response!.backend).toBe('other');
    } finally {
      otherClient.close();
    }
  });

  it('answers UNIMPLEMENTED, naming the service, when no pool matches', async () => {
    const res = await rawCall(lb.listen, '/nowhere.Service/Method');
    expect(res.status).toBe('200');
    expect(res.grpcStatus).toBe(String(grpc.status.UNIMPLEMENTED));
    expect(decodeURIComponent(res.grpcMessage)).toContain('no pool routes service "nowhere.Service"');
  });

  it('answers UNAVAILABLE, naming the pool, when no backend can be reached', async () => {
    const res = await rawCall(lb.listen, '/dead.Service/Method');
    expect(res.grpcStatus).toBe(String(grpc.status.UNAVAILABLE));
    expect(decodeURIComponent(res.grpcMessage)).toMatch(/pool "dead"/);
  });

  it('answers 415 to requests that are not gRPC', async () => {
    const res = await rawCall(lb.listen, '/switchboard.test.v1.Echo/Unary', 'application/json');
    expect(res.status).toBe('415');
  });

  it('serves metrics for the calls it proxied', async () => {
    const text = await lb.metrics();
    expect(text).toMatch(new RegExp(`switchboard_calls_total\\{pool="echo",backend="${a.address}",code="OK"\\} \\d+`));
    expect(text).toMatch(/switchboard_calls_total\{pool="echo",backend="[^"]+",code="NOT_FOUND"\} 1/);
    expect(text).toMatch(/switchboard_call_duration_seconds_bucket\{le="[^"]+",pool="echo"\}/);
    expect(text).toMatch(/switchboard_backend_active_streams\{pool="echo",backend="[^"]+"\} 0/);
    expect(text).toMatch(/switchboard_backend_healthy\{pool="echo",backend="[^"]+"\} 1/);
    expect(text).toMatch(/switchboard_config_revision 1/);
    const ready = await fetch(`http://${lb.ops}/readyz`);
    expect(ready.status).toBe(200);
  });
});

describe('TLS with ALPN h2', () => {
  it('terminates TLS and proxies to a cleartext backend', async () => {
    const backend = await startEchoBackend({ name: 'tls-backend' });
    const lb = await startBalancer({ pools: [{ name: 'echo', match: { services: ['*'] }, backends: [{ address: backend.address }] }] }, [
      '--tls-cert',
      'test/fixtures/tls/cert.pem',
      '--tls-key',
      'test/fixtures/tls/key.pem',
    ]);
    const { Echo } = loadEcho();
    const client = new Echo(lb.listen, grpc.credentials.createSsl(readFileSync('test/fixtures/tls/cert.pem')), {
      ...CLIENT_OPTIONS,
      'grpc.ssl_target_name_override': 'localhost',
    }) as EchoClient;
    try {
      const r = await unary(client, { payload: Buffer.from('secret') });
      expect(r.response).toMatchObject({ backend: 'tls-backend' });
    } finally {
      client.close();
      await lb.stop();
      await backend.stop();
    }
  });
});

/** A bare HTTP/2 request, to look at exactly what the balancer answers. */
function rawCall(authority: string, path: string, contentType = 'application/grpc'): Promise<{ status: string; grpcStatus: string; grpcMessage: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${authority}`);
    session.on('error', reject);
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': contentType, te: 'trailers' });
    let headers: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => (headers = h));
    req.on('data', () => {});
    req.on('close', () => {
      session.close();
      resolve({ status: String(headers[':status']), grpcStatus: String(headers['grpc-status']), grpcMessage: String(headers['grpc-message']) });
    });
    req.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}
