/**
 * The floor for CPU per call: a naive node:http2 relay, one upstream session to one backend,
 * every stream forwarded with its headers, body and trailers, nothing else (no picking, limits,
 * metrics or error handling worth the name). Run as its own process by bench/workers.ts:
 * `node dist/bench/naive-relay.js BACKEND_HOST:PORT` prints {"listen":"127.0.0.1:PORT"}.
 */
import * as http2 from 'node:http2';

const HOP = new Set([':method', ':path', ':scheme', ':authority', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

const upstream = http2.connect(`http://${process.argv[2]}`);
const server = http2.createServer({ settings: { maxConcurrentStreams: 10_000 } });
server.on('stream', (down, headers) => {
  const out: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': headers[':path'] };
  for (const [k, v] of Object.entries(headers)) if (!HOP.has(k)) out[k] = v;
  const up = upstream.request(out);
  down.pipe(up);
  up.on('response', (h) => {
    const { ':status': status, ...rest } = h;
    down.respond({ ':status': status, ...rest }, { waitForTrailers: true });
    up.pipe(down);
  });
  let trailers: http2.IncomingHttpHeaders = {};
  up.on('trailers', (t) => (trailers = t));
  down.on('wantTrailers', () => down.sendTrailers(trailers as http2.OutgoingHttpHeaders));
  up.on('error', () => down.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
  down.on('error', () => up.close(http2.constants.NGHTTP2_CANCEL));
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address() as { port: number };
  process.stdout.write(`${JSON.stringify({ listen: `127.0.0.1:${a.port}` })}\n`);
});
