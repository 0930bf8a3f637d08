/** What the admin's two gRPC stream servers (balancers' control plane, xDS clients) do alike. */
import type * as grpc from '@grpc/grpc-js';

/** Runs `closed` once the stream ended, whichever way (end, error, cancel, close); a client's end is answered with ours. */
export function whenEnded(stream: grpc.ServerDuplexStream<unknown, unknown>, closed: () => void): void {
  stream.on('end', () => {
    closed();
    stream.end();
  });
  stream.on('error', closed);
  stream.on('cancelled', closed);
  stream.on('close', closed);
}

/** The common name of the client certificate the peer presented (mTLS, verified at the handshake), if any. */
export function certificateName(stream: grpc.ServerDuplexStream<unknown, unknown>): string | undefined {
  const cn = stream.getAuthContext?.().sslPeerCertificate?.subject?.CN;
  return typeof cn === 'string' && cn !== '' ? cn : undefined;
}
