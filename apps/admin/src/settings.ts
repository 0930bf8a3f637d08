/** The admin's process settings, resolved once from flags and environment at start-up. */
import type { Logger } from 'pino';
import type { HostPort } from '#common';
import type { Database } from './store/database';

export interface AdminSettings {
  http: HostPort;
  grpc: HostPort;
  /** The SQLite file or the PostgreSQL database (--db). */
  database: Database;
  /** Where the generated bootstrap token is written (the SQLite file's folder; ./data with PostgreSQL). */
  dataDir: string;
  /** SWITCHBOARD_ADMIN_TOKEN: the bootstrap admin token, if the operator chose one. */
  adminToken?: string;
  migrationsDir: string;
  /** How long a disconnected balancer stays in /v1/nodes (default one hour). */
  nodeRetentionMs?: number;
  /** Revisions kept: each commit deletes those older than the newest N (0: keep every one). */
  revisionRetention?: number;
  logger: Logger;
}

export const ADMIN_SETTINGS = Symbol('AdminSettings');
