import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { xdsBootstrap } from './xds-bootstrap-command';

describe('xdsBootstrap', () => {
  it('cleartext: insecure channel credentials, the node id, and the locality grpc-js requires', () => {
    expect(xdsBootstrap({ admin: '127.0.0.1:8081', nodeId: 'checkout-1' })).toEqual({
      xds_servers: [{ server_uri: '127.0.0.1:8081', channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: 'checkout-1', locality: {} },
    });
  });

  it('TLS and mTLS: absolute file paths in tls channel credentials (A65)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'xds-bootstrap-'));
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(path.join(dir, f), 'x');
    const b = xdsBootstrap({ admin: '127.0.0.1:8081', nodeId: 'n', adminCa: path.join(dir, 'ca.pem'), adminCert: path.join(dir, 'cert.pem'), adminKey: path.join(dir, 'key.pem') }) as any;
    expect(b.xds_servers[0].channel_creds).toEqual([{ type: 'tls', config: { ca_certificate_file: path.join(dir, 'ca.pem'), certificate_file: path.join(dir, 'cert.pem'), private_key_file: path.join(dir, 'key.pem') } }]);
  });

  it('refuses what cannot make a valid bootstrap, naming the flag', () => {
    expect(() => xdsBootstrap({ admin: 'nope', nodeId: 'n' })).toThrow(/--admin/);
    expect(() => xdsBootstrap({ admin: '127.0.0.1:1', nodeId: '' })).toThrow(/--node-id/);
    expect(() => xdsBootstrap({ admin: '127.0.0.1:1', nodeId: 'has space' })).toThrow(/--node-id/);
    expect(() => xdsBootstrap({ admin: '127.0.0.1:1', nodeId: 'n', adminCert: 'c.pem' })).toThrow(/--admin-cert and --admin-key/);
    expect(() => xdsBootstrap({ admin: '127.0.0.1:1', nodeId: 'n', adminCert: 'c.pem', adminKey: 'k.pem' })).toThrow(/--admin-ca/);
    expect(() => xdsBootstrap({ admin: '127.0.0.1:1', nodeId: 'n', adminCa: '/no/such/ca.pem' })).toThrow(/--admin-ca: no such file/);
  });
});
