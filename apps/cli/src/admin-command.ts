/** `switchboard admin`: runs the admin service (REST API on --http, control plane on --grpc) on SQLite. */
import { Command } from 'commander';
import pino from 'pino';
import { flag, stopOnSignals } from './server-process';
import { parseHostPort } from '../../../libs/common/src';

interface AdminFlags {
  http: string;
  grpc: string;
  db: string;
  logLevel: string;
}

export function adminCommand(): Command {
  return new Command('admin')
    .description('run the admin service: REST API, OpenAPI docs and the control plane the balancers connect to')
    .addOption(flag('--http <host:port>', 'REST API address', 'HTTP').default('127.0.0.1:8080'))
    .addOption(flag('--grpc <host:port>', 'control-plane (gRPC) address for balancers', 'GRPC').default('127.0.0.1:8081'))
    .addOption(flag('--db <url>', 'SQLite database file (created and migrated on start)', 'DB').default('file:./data/switchboard.db'))
    .addOption(flag('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'LOG_LEVEL').default('info'))
    .addHelpText('after', '\nThe bootstrap admin token is SWITCHBOARD_ADMIN_TOKEN, or generated on first start into <db folder>/admin-token.\n\nExample:\n  switchboard admin --http 127.0.0.1:8080 --db file:./data/switchboard.db\n')
    .action(async (flags: AdminFlags) => {
      const log = pino({ level: flags.logLevel, base: { app: 'admin' } });
      // Loaded on demand: Nest and Prisma take most of a second to import, which client commands should not pay.
      const { startAdmin } = await import('../../admin/src/admin.js');
      const admin = await startAdmin({
        http: parseHostPort(flags.http, '--http'),
        grpc: parseHostPort(flags.grpc, '--grpc'),
        db: flags.db,
        logger: log,
        ...(process.env.SWITCHBOARD_ADMIN_TOKEN ? { adminToken: process.env.SWITCHBOARD_ADMIN_TOKEN } : {}),
      });
      stopOnSignals(log, () => admin.close());
    });
}
