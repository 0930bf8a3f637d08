/**
 * Starts the admin service: applies migrations to the SQLite file, boots the Nest app (REST API,
 * OpenAPI, auth, metrics) on --http and returns a handle to stop it.
 */
import 'reflect-metadata';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { SwaggerModule } from '@nestjs/swagger';
import type { Logger } from 'pino';
import { formatHostPort, packageRoot, TlsFiles, type HostPort } from '#common';
import { AdminModule } from './app.module';
import { ConfigService } from './config/config.service';
import { ControlPlaneServer } from './control/control-plane.server';
import { NodesService } from './control/nodes.service';
import { StatsService } from './control/stats.service';
import { authenticateFirst } from './auth/authenticate';
import { ReloadableServerCredentials } from './control/reloadable-server-credentials';
import { TokensService } from './auth/tokens.service';
import { XdsServer } from './xds/xds-server';
import { jsonBody } from './http/json-body';
import { lockSqlite } from './store/sqlite-lock';
import { AdminMetrics } from './ops/http-metrics';
import { buildOpenApi } from './openapi/document';
import { OpenApiDocument } from './openapi/openapi.controller';
import type { AdminSettings } from './settings';
import { describeDatabase, parseDatabase } from './store/database';
import { applyMigrations } from './store/migrations';
import { applyPostgresMigrations } from './store/postgres-migrations';

export interface AdminOptions {
  http: HostPort;
  grpc: HostPort;
  /** `file:./data/switchboard.db` or a plain path. */
  db: string;
  adminToken?: string;
  /** How long a disconnected balancer stays in /v1/nodes (default one hour). */
  nodeRetentionMs?: number;
  /** Revisions kept (0: all). */
  revisionRetention?: number;
  /** HTTPS on `http` and TLS on `grpc`; with `clientCa`, balancers must present a certificate it signed. */
  tls?: { cert: string; key: string; clientCa?: string | undefined };
  /** Also serve xDS (ADS) on `grpc` for proxyless gRPC clients; unauthenticated streams only on loopback or when allowed. */
  xds?: { allowUnauthenticated?: boolean };
  /** Failed authentications per client address and minute before 429 (default 60). */
  maxAuthFailuresPerMinute?: number;
  logger: Logger;
}

export interface RunningAdmin {
  http: HostPort;
  grpc: HostPort;
  app: INestApplication;
  settings: AdminSettings;
  /** Re-reads the TLS files (SIGHUP). */
  reloadTls(): void;
  close(): Promise<void>;
}

export async function startAdmin(options: AdminOptions): Promise<RunningAdmin> {
  const log = options.logger;
  const database = parseDatabase(options.db);
  const dataDir = database.kind === 'sqlite' ? path.dirname(database.file) : path.resolve('data');
  mkdirSync(dataDir, { recursive: true });
  const root = packageRoot(typeof __dirname === 'string' ? __dirname : undefined, 4);
  const migrationsDir = path.join(root, database.kind === 'sqlite' ? 'prisma/migrations' : 'prisma/postgresql/migrations');
  const sqliteLock = database.kind === 'sqlite' ? lockSqlite(database.file) : null;
  process.once('exit', () => sqliteLock?.release());
  const migrated = database.kind === 'sqlite' ? applyMigrations(database.file, migrationsDir) : await applyPostgresMigrations(database.url, migrationsDir);
  log.info({ db: describeDatabase(database), applied: migrated.applied, migrations: migrated.total }, 'database ready');

  const settings: AdminSettings = { http: options.http, grpc: options.grpc, database, dataDir, migrationsDir, logger: log, ...(options.adminToken ? { adminToken: options.adminToken } : {}), ...(options.nodeRetentionMs !== undefined ? { nodeRetentionMs: options.nodeRetentionMs } : {}), ...(options.revisionRetention ? { revisionRetention: options.revisionRetention } : {}) };
  const metrics = new AdminMetrics();
  // TLS: the REST API's HTTPS server and the control plane's gRPC server share the certificate;
  // both pick up rotated files (SIGHUP, or a change on disk) for new handshakes.
  let httpsServer: import('node:https').Server | null = null;
  let grpcCredentials: ReloadableServerCredentials | null = null;
  const tlsFiles = options.tls
    ? new TlsFiles({ cert: options.tls.cert, key: options.tls.key, ca: options.tls.clientCa }, 'admin', log, (m) => {
        httpsServer?.setSecureContext({ cert: m.cert, key: m.key });
        grpcCredentials?.update(m);
      }).watch()
    : null;
  if (tlsFiles) grpcCredentials = new ReloadableServerCredentials(tlsFiles.material, options.tls!.clientCa !== undefined);
  else warnIfExposed(log, options.http, options.grpc);
  const app = await NestFactory.create<NestExpressApplication>(AdminModule.forRoot(settings, metrics), {
    bodyParser: false,
    // Nest's own messages go to the admin's JSON log, not in colour between its lines; a listen
    // error is left to the CLI, which prints it once and exits 1.
    logger: nestLogger(log),
    ...(tlsFiles ? { httpsOptions: { cert: tlsFiles.material.cert, key: tlsFiles.material.key } } : {}),
  });
  if (tlsFiles) {
    httpsServer = app.getHttpServer() as import('node:https').Server;
    httpsServer.on('tlsClientError', () => metrics.tlsFailures.inc({ listener: 'http' }));
  }
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(metrics.middleware());
  // Authentication first: nobody without a token gets a body parsed.
  const tokens = app.get(TokensService);
  app.use(authenticateFirst({ authenticate: (secret) => tokens.authenticate(secret) ?? (database.kind === 'postgresql' ? tokens.authenticateFresh(secret) : undefined), log, maxFailuresPerMinute: options.maxAuthFailuresPerMinute ?? 60 }));
  app.use(jsonBody());
  app.enableShutdownHooks([]);
  const document = buildOpenApi(app);
  app.get(OpenApiDocument).document = document;
  // Swagger UI: everything from this origin (its inline <style> blocks need 'unsafe-inline' for
  // styles only), never framed (clickjacking of a page that holds a pasted token).
  app.use('/docs', (_req: import('express').Request, res: import('express').Response, next: () => void) => {
    res.setHeader('content-security-policy', DOCS_CSP);
    res.setHeader('x-frame-options', 'DENY');
    res.setHeader('x-content-type-options', 'nosniff');
    res.setHeader('referrer-policy', 'no-referrer');
    next();
  });
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs/openapi.json', customSiteTitle: 'Switchboard admin API' });
  app.get(ConfigService).onCommit(() => metrics.revision.inc());
  app.get(ControlPlaneServer).onPush((kind, bytes) => {
    metrics.pushes.inc({ kind });
    metrics.pushedBytes.inc({ kind }, bytes);
  });

  const nodes = app.get(NodesService);
  metrics.exposeStats(() => app.get(StatsService).view(), () => nodes.list().filter((n) => n.connected).length);

  await app.init();
  const xds = options.xds
    ? (server: import('@grpc/grpc-js').Server) => {
        const loopback = LOOPBACK.test(options.grpc.host);
        const allowUnauthenticated = loopback || options.xds!.allowUnauthenticated === true;
        if (!loopback && options.xds!.allowUnauthenticated) log.warn({ grpc: formatHostPort(options.grpc) }, 'xDS serves clients without a certificate or token beyond loopback (--xds-allow-unauthenticated): anyone who reaches the port reads every pool\'s backends');
        const xdsServer = app.get(XdsServer);
        xdsServer.observe({ response: (type) => metrics.xdsResponses.inc({ type }), nack: (type) => metrics.xdsNacks.inc({ type }), refused: (reason) => metrics.xdsRefused.inc({ reason }) });
        metrics.exposeXdsClients(() => xdsServer.clients.connectedCount);
        xdsServer.attach(server, { allowUnauthenticated });
      }
    : undefined;
  const grpc = await app.get(ControlPlaneServer).listen(options.grpc, grpcCredentials ?? undefined, xds);
  await app.listen(options.http.port, options.http.host);
  const address = app.getHttpServer().address() as AddressInfo;
  log.debug({ routes: routesOf(app) }, 'routes');
  const http = { host: options.http.host, port: address.port };
  const scheme = tlsFiles ? 'https' : 'http';
  log.info(
    { http: formatHostPort(http), grpc: formatHostPort(grpc), docs: `${scheme}://${formatHostPort(http)}/docs`, revision: app.get(ConfigService).current().revision, tls: Boolean(tlsFiles), clientCertificates: Boolean(options.tls?.clientCa), xds: Boolean(options.xds) },
    'admin listening',
  );
  return {
    http,
    grpc,
    app,
    settings,
    reloadTls: () => tlsFiles?.reload('SIGHUP'),
    close: async () => {
      tlsFiles?.stop();
      try {
        await closeBounded(app, log);
      } finally {
        sqliteLock?.release();
      }
    },
  };
}

/** Every routed method and path of the app, as `GET /v1/pools/{name}` (OpenAPI's template style). */
export function routesOf(app: INestApplication): string[] {
  const router = (app.getHttpAdapter().getInstance() as { router?: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } }).router;
  const out: string[] = [];
  for (const layer of router?.stack ?? []) {
    if (!layer.route) continue;
    const template = layer.route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') out.push(`${method.toUpperCase()} ${template}`);
  }
  return out;
}

/** How long requests in flight may take to finish when the admin stops; then their connections are cut. */
const HTTP_CLOSE_GRACE_MS = 3_000;

/** Stops the app: idle keep-alive connections at once, requests still in flight after a grace (a slow client never holds the admin open). */
async function closeBounded(app: INestApplication, log: Logger): Promise<void> {
  const server = app.getHttpServer() as import('node:http').Server;
  server.closeIdleConnections();
  const force = setTimeout(() => {
    log.warn({ afterMs: HTTP_CLOSE_GRACE_MS }, 'cutting HTTP connections still open at shutdown');
    server.closeAllConnections();
  }, HTTP_CLOSE_GRACE_MS);
  force.unref();
  try {
    await app.close();
  } finally {
    clearTimeout(force);
  }
}

function nestLogger(log: Logger): import('@nestjs/common').LoggerService {
  const text = (m: unknown): string => (m instanceof Error ? m.message : String(m));
  return {
    log: () => {},
    debug: () => {},
    verbose: () => {},
    warn: (message: unknown, context?: string) => log.warn({ context }, text(message)),
    error: (message: unknown, ...rest: unknown[]) => {
      if (/EADDRINUSE|EADDRNOTAVAIL|EACCES/.test(text(message))) return;
      log.error({ context: rest.find((r) => typeof r === 'string' && !r.includes('\n')) }, text(message));
    },
  };
}

const DOCS_CSP = ["default-src 'none'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:", "font-src 'self' data:", "connect-src 'self'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"].join('; ');

const LOOPBACK = /^(127\.|::1$|localhost$|\[::1\]$)/;

/** Cleartext is fine on loopback (npm start); anywhere else tokens would cross the network in the clear. */
function warnIfExposed(log: Logger, http: HostPort, grpcAddress: HostPort): void {
  const exposed = [http, grpcAddress].filter((a) => !LOOPBACK.test(a.host));
  if (exposed.length > 0) {
    log.warn(
      { listen: exposed.map(formatHostPort) },
      'the admin listens beyond loopback without TLS: bearer tokens and configurations cross the network in cleartext; give --tls-cert and --tls-key',
    );
  }
}
