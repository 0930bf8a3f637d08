/**
 * How the balancer dials a backend for an HTTP/2 session: what node:http2's connect does (TCP,
 * or TLS offering ALPN h2 with the host as SNI unless it is an IP address), with Nagle's
 * algorithm off. node:net leaves it on, and node:http2 offers no way to turn it off on a session
 * it dialled itself; a proxy relays small frames (a unary call's HEADERS, DATA and trailers) that
 * must not wait for the peer's ACK of the previous segment. NGINX's `tcp_nodelay` is on by
 * default for the same reason, and the client side of the data plane has it too
 * (proxy/data-plane-server.ts).
 */
import * as net from 'node:net';
import * as tls from 'node:tls';

export function dial(authority: URL, options: tls.ConnectionOptions): net.Socket {
  const host = authority.hostname.startsWith('[') ? authority.hostname.slice(1, -1) : authority.hostname;
  const port = Number(authority.port || (authority.protocol === 'http:' ? 80 : 443));
  const socket =
    authority.protocol === 'https:'
      ? tls.connect({ ...options, host, port, ALPNProtocols: ['h2'], servername: options.servername ?? (net.isIP(host) ? undefined : host) })
      : net.connect({ ...(options as net.NetConnectOpts), host, port });
  return socket.setNoDelay(true);
}
