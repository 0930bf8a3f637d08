/**
 * `switchboard xds-bootstrap`: prints the gRPC xDS bootstrap (gRFC A27) that points a proxyless
 * client at an admin started with --xds. With --admin-ca (and --admin-cert/--admin-key for mTLS)
 * the channel is TLS (gRFC A65's `tls` channel credentials, which grpc-go and grpc-java take);
 * without, it is cleartext (`insecure`), which the admin serves on a loopback port, or with
 * --xds-allow-unauthenticated. grpc-js (@grpc/grpc-js-xds) supports only `insecure` channel
 * credentials: give a Node client the cleartext bootstrap, on loopback or through a sidecar.
 */
import { Command } from 'commander';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { formatHostPort, parseHostPort, XDS_NODE_ID } from '#common';

interface BootstrapFlags {
  admin: string;
  nodeId: string;
  adminCa?: string;
  adminCert?: string;
  adminKey?: string;
  cluster?: string;
}


/** The bootstrap JSON for these flags; throws on a flag that cannot make a valid one. */
export function xdsBootstrap(flags: BootstrapFlags): Record<string, unknown> {
  const admin = parseHostPort(flags.admin, '--admin');
  if (!XDS_NODE_ID.test(flags.nodeId)) throw new Error('--node-id must be 1-256 visible ASCII characters');
  if (Boolean(flags.adminCert) !== Boolean(flags.adminKey)) throw new Error('--admin-cert and --admin-key go together');
  if (flags.adminCert && !flags.adminCa) throw new Error('--admin-cert needs --admin-ca (the client certificate is sent over TLS)');
  const file = (f: string, name: string): string => {
    const abs = path.resolve(f);
    if (!existsSync(abs)) throw new Error(`${name}: no such file: ${abs}`);
    return abs;
  };
  const creds = flags.adminCa
    ? [{ type: 'tls', config: { ca_certificate_file: file(flags.adminCa, '--admin-ca'), ...(flags.adminCert ? { certificate_file: file(flags.adminCert, '--admin-cert'), private_key_file: file(flags.adminKey!, '--admin-key') } : {}) } }]
    : [{ type: 'insecure' }];
  return {
    xds_servers: [{ server_uri: formatHostPort(admin), channel_creds: creds, server_features: ['xds_v3'] }],
    node: { id: flags.nodeId, ...(flags.cluster ? { cluster: flags.cluster } : {}), locality: {} },
  };
}

export function xdsBootstrapCommand(): Command {
  return new Command('xds-bootstrap')
    .description('print a gRPC xDS bootstrap file (GRPC_XDS_BOOTSTRAP) for proxyless clients of an admin started with --xds')
    .requiredOption('--admin <host:port>', 'the admin\'s control-plane (--grpc) address')
    .requiredOption('--node-id <id>', 'the client\'s node id, as GET /v1/nodes will list it')
    .option('--admin-ca <file>', 'trust this CA for the admin\'s TLS certificate (TLS channel credentials)')
    .option('--admin-cert <file>', 'client certificate for the admin (mTLS), with --admin-key')
    .option('--admin-key <file>', 'private key of --admin-cert')
    .option('--cluster <name>', 'node.cluster, for the client\'s own bookkeeping')
    .addHelpText('after', '\nExample:\n  switchboard xds-bootstrap --admin 127.0.0.1:8081 --node-id checkout-1 > bootstrap.json\n  GRPC_XDS_BOOTSTRAP=bootstrap.json node client.js   # target xds:///greeter\n')
    .action((flags: BootstrapFlags) => {
      const bootstrap = xdsBootstrap(flags);
      if (flags.adminCa) process.stderr.write('note: TLS channel credentials are for grpc-go and grpc-java; grpc-js (@grpc/grpc-js-xds) takes only "insecure" ones\n');
      process.stdout.write(`${JSON.stringify(bootstrap, null, 2)}\n`);
    });
}
