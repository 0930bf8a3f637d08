/**
 * The request headers a call carries to its backend. HTTP/2 forbids connection-specific header
 * fields (RFC 9113 8.2.2): they describe one hop, not the request. Node's server lets a few of
 * them through (`http2-settings`, `keep-alive`, `proxy-connection`, ...) while its client refuses
 * to send them, so a client could otherwise make every call it sends fail inside the balancer.
 *
 * Decision, as Envoy and NGINX do for hop-by-hop fields: drop them and forward the rest; `te` is
 * forwarded only as `te: trailers`, the one value HTTP/2 allows (and gRPC requires).
 * `grpc-previous-rpc-attempts` is the balancer's to say (gRPC A6: the attempts before this one
 * on this hop), so a client's own is dropped: a first attempt carries none. The common
 * case (none present) costs a few property reads and returns the same object.
 */
import type { IncomingHttpHeaders } from 'node:http2';

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'grpc-previous-rpc-attempts'] as const;

export function forwardedHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  let clean = headers.te === undefined || headers.te === 'trailers';
  for (let i = 0; clean && i < HOP_BY_HOP.length; i++) if (headers[HOP_BY_HOP[i]!] !== undefined) clean = false;
  if (clean) return headers;
  const out: IncomingHttpHeaders = { ...headers };
  for (const name of HOP_BY_HOP) delete out[name];
  if (out.te !== undefined) out.te = 'trailers';
  return out;
}
