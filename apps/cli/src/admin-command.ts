/** `switchboard admin`: runs the admin service (REST API on --http, control plane on --grpc) on SQLite. */
import { Command } from 'commander';
import { tuneAdminMemory } from './admin-memory';
import { processLogger } from './process-logger';
import { flag, stopOnSignals } from './server-process';
import { parseHostPort } from '#common';

/** How long the admin's stop may take (in-flight requests, balancers' streams) before it exits anyway. */
const ADMIN_STOP_MS = 10_000;

interface AdminFlags {
  http: string;
  grpc: string;
  db: string;
  nodeRetentionMs: string;
  revisionRetention: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  xds?: boolean;
  xdsAllowUnauthenticated?: boolean;
  logLevel: string;
}

export function adminCommand(): Command {
  return new Command('admin')
    .description('run the admin service: REST API, OpenAPI docs and the control plane the balancers connect to')
    .addOption(flag('--http <host:port>', 'REST API address', 'HTTP').default('127.0.0.1:8080'))
    .addOption(flag('--grpc <host:port>', 'control-plane (gRPC) address for balancers', 'GRPC').default('127.0.0.1:8081'))
    .addOption(flag('--db <url>', 'SQLite database file (path or file:PATH; created and migrated on start), or postgresql://USER@HOST:PORT/DB', 'DB').default('file:./data/switchboard.db'))
    .addOption(flag('--tls-cert <file>', 'serve HTTPS on --http and TLS on --grpc with this certificate chain (PEM)', 'TLS_CERT'))
    .addOption(flag('--tls-key <file>', 'private key for --tls-cert (PEM)', 'TLS_KEY'))
    .addOption(flag('--tls-client-ca <file>', 'balancers must present a client certificate signed by this CA on --grpc (mTLS)', 'TLS_CLIENT_CA'))
    .addOption(flag('--xds', 'also serve xDS (ADS: LDS/RDS/CDS/EDS) on --grpc for proxyless gRPC clients', 'XDS'))
    .addOption(flag('--xds-allow-unauthenticated', 'serve xDS clients that present neither a client certificate nor a token even when --grpc is not on loopback', 'XDS_ALLOW_UNAUTHENTICATED'))
    .addOption(flag('--node-retention-ms <ms>', 'how long a disconnected balancer stays listed in /v1/nodes', 'NODE_RETENTION_MS').default('3600000'))
    .addOption(flag('--revision-retention <n>', 'revisions kept: each change deletes those older than the newest N (0 = keep every one)', 'REVISION_RETENTION').default('0'))
    .addOption(flag('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'LOG_LEVEL').default('info'))
    .addHelpText('after', '\nThe bootstrap admin token is SWITCHBOARD_ADMIN_TOKEN, or generated on first start into <db folder>/admin-token.\n\nExample:\n  switchboard admin --http 127.0.0.1:8080 --db file:./data/switchboard.db\n')
    .action(async (flags: AdminFlags) => {
      const logger = processLogger('admin', flags.logLevel);
      const log = logger.log;
      // Loaded on demand: Nest and Prisma take most of a second to import, which client commands should not pay.
      if (Boolean(flags.tlsCert) !== Boolean(flags.tlsKey)) throw new Error('--tls-cert and --tls-key go together');
      if (flags.tlsClientCa && !flags.tlsCert) throw new Error('--tls-client-ca needs --tls-cert and --tls-key');
      tuneAdminMemory();
      const { startAdmin } = await import('../../admin/src/admin.js');
      const admin = await startAdmin({
        http: parseHostPort(flags.http, '--http'),
        grpc: parseHostPort(flags.grpc, '--grpc'),
        db: flags.db,
        nodeRetentionMs: nonNegativeInt(flags.nodeRetentionMs, '--node-retention-ms'),
        revisionRetention: nonNegativeInt(flags.revisionRetention, '--revision-retention'),
        ...(flags.xds || flags.xdsAllowUnauthenticated ? { xds: { allowUnauthenticated: flags.xdsAllowUnauthenticated === true } } : {}),
        ...(flags.tlsCert && flags.tlsKey ? { tls: { cert: flags.tlsCert, key: flags.tlsKey, clientCa: flags.tlsClientCa } } : {}),
        logger: log,
        ...(process.env.SWITCHBOARD_ADMIN_TOKEN ? { adminToken: process.env.SWITCHBOARD_ADMIN_TOKEN } : {}),
      });
      stopOnSignals(logger, () => admin.close(), ADMIN_STOP_MS);
      process.on('SIGHUP', () => admin.reloadTls());
    });
}

function nonNegativeInt(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got "${value}"`);
  return n;
}
