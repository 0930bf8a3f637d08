/**
 * dial: node:http2's own way to a backend (TCP, or TLS with ALPN h2 and SNI), with Nagle's
 * algorithm off. Real loopback servers; TLS with the test certificate (CN and SAN localhost,
 * SAN 127.0.0.1).
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as path from 'node:path';
import { text } from 'node:stream/consumers';
import * as tls from 'node:tls';
import { dial } from './dial';

/** Jest runs from the repository's root. */
const TLS_DIR = path.resolve('test', 'fixtures', 'tls');
const cert = readFileSync(path.join(TLS_DIR, 'cert.pem'));
const key = readFileSync(path.join(TLS_DIR, 'key.pem'));

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
  jest.restoreAllMocks();
});

function listening<S extends net.Server>(server: S): Promise<number> {
  closers.push(() => server.close());
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

/** The HTTP/2 answer to one GET over a session node:http2 made with `dial`. */
async function getOver(url: string, options: http2.SecureClientSessionOptions = {}): Promise<string> {
  const session = http2.connect(url, { ...options, createConnection: (authority, o) => dial(authority, o as tls.ConnectionOptions) });
  closers.push(() => session.destroy());
  const failed = new Promise<never>((_, reject) => session.on('error', reject));
  const req = session.request({ ':path': '/' });
  req.end();
  return Promise.race([text(req), failed]);
}

const answer = (stream: http2.ServerHttp2Stream, text: string): void => {
  stream.respond({ ':status': 200 });
  stream.end(text);
};

describe('dial', () => {
  it('plain TCP: an HTTP/2 session works over it, and Nagle is turned off', async () => {
    const noDelay = jest.spyOn(net.Socket.prototype, 'setNoDelay');
    const server = http2.createServer();
    server.on('stream', (stream) => answer(stream, 'plain'));
    const port = await listening(server);
    await expect(getOver(`http://127.0.0.1:${port}`)).resolves.toBe('plain');
    expect(noDelay).toHaveBeenCalledWith(true);
  });

  it('TLS to a name: ALPN h2 and SNI for that name, the certificate checked against it', async () => {
    const noDelay = jest.spyOn(net.Socket.prototype, 'setNoDelay');
    const seen: { sni?: string; alpn?: string | false | null } = {};
    const server = http2.createSecureServer({ cert, key });
    server.on('secureConnection', (s: tls.TLSSocket) => {
      seen.sni = (s as tls.TLSSocket & { servername?: string }).servername;
      seen.alpn = s.alpnProtocol;
    });
    server.on('stream', (stream) => answer(stream, 'named'));
    const port = await listening(server);
    // The name resolves to 127.0.0.1 here, so no resolver (or ::1) is involved.
    const lookup = (_host: string, o: { all?: boolean }, cb: (...args: unknown[]) => void): void =>
      o.all ? cb(null, [{ address: '127.0.0.1', family: 4 }]) : cb(null, '127.0.0.1', 4);
    await expect(getOver(`https://localhost:${port}`, { ca: cert, lookup } as unknown as http2.SecureClientSessionOptions)).resolves.toBe('named');
    expect(seen).toEqual({ sni: 'localhost', alpn: 'h2' });
    expect(noDelay).toHaveBeenCalledWith(true);
  });

  it('TLS to an IP address: no SNI (as node:http2 does), the certificate checked against the IP', async () => {
    const seen: { sni?: string | false } = { sni: 'not seen' };
    const server = http2.createSecureServer({ cert, key });
    server.on('secureConnection', (s: tls.TLSSocket) => {
      seen.sni = (s as tls.TLSSocket & { servername?: string | false }).servername;
    });
    server.on('stream', (stream) => answer(stream, 'by ip'));
    const port = await listening(server);
    await expect(getOver(`https://127.0.0.1:${port}`, { ca: cert })).resolves.toBe('by ip');
    expect(seen.sni === false || seen.sni === undefined).toBe(true);
  });

  it('TLS with a server name given: that name is sent and checked, whatever the address', async () => {
    let sni: string | undefined;
    const server = http2.createSecureServer({ cert, key });
    server.on('secureConnection', (s: tls.TLSSocket) => {
      sni = (s as tls.TLSSocket & { servername?: string }).servername;
    });
    server.on('stream', (stream) => answer(stream, 'sni'));
    const port = await listening(server);
    await expect(getOver(`https://127.0.0.1:${port}`, { ca: cert, servername: 'localhost' })).resolves.toBe('sni');
    expect(sni).toBe('localhost');
  });

  it('TLS to a server whose certificate does not match: the session fails, nothing is answered', async () => {
    const server = http2.createSecureServer({ cert, key });
    server.on('stream', (stream) => answer(stream, 'never'));
    const port = await listening(server);
    await expect(getOver(`https://127.0.0.1:${port}`, { ca: cert, servername: 'not-the-name.test' })).rejects.toThrow(/not-the-name\.test|altnames|Hostname/i);
  });
});
