/** The admin's process settings, resolved once from flags and environment at start-up. */
import type { Logger } from 'pino';
import type { HostPort } from '#common';

export interface AdminSettings {
  http: HostPort;
  grpc: HostPort;
  /** Absolute path of the SQLite database file. */
  dbFile: string;
  /** Where the generated bootstrap token is written (the database's folder). */
  dataDir: string;
  /** SWITCHBOARD_ADMIN_TOKEN: the bootstrap admin token, if the operator chose one. */
  adminToken?: string;
  migrationsDir: string;
  /** How long a disconnected balancer stays in /v1/nodes (default one hour). */
  nodeRetentionMs?: number;
  logger: Logger;
}

export const ADMIN_SETTINGS = Symbol('AdminSettings');
