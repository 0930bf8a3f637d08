/**
 * grpc-js server credentials whose certificate, key and client CA can be replaced while the
 * server runs: grpc-js applies each update to its listening TLS servers (setSecureContext), so
 * new handshakes use the new files and open connections keep theirs. With `requireClientCert`
 * a client without a certificate signed by the CA is refused at the handshake.
 */
import * as grpc from '@grpc/grpc-js';
import type { TlsMaterial } from '#common';

export class ReloadableServerCredentials extends grpc.ServerCredentials {
  constructor(material: TlsMaterial, requireClientCert: boolean) {
    super({ requestCert: requireClientCert, rejectUnauthorized: requireClientCert, ALPNProtocols: ['h2'] }, contextOf(material));
  }

  update(material: TlsMaterial): void {
    this.updateSecureContextOptions(contextOf(material));
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

function contextOf(m: TlsMaterial): { cert?: Buffer; key?: Buffer; ca?: Buffer } {
  return { ...(m.cert ? { cert: m.cert } : {}), ...(m.key ? { key: m.key } : {}), ...(m.ca ? { ca: m.ca } : {}) };
}
