/** `switchboard balancer`: parses and checks the flags; apps/balancer/src/start.ts starts the process (single, primary or worker). */
import cluster from 'node:cluster';
import { availableParallelism, hostname } from 'node:os';
import { Command } from 'commander';
import { processLogger } from './process-logger';
import { flag, stopOnSignals } from './server-process';
import { formatHostPort, parseHostPort } from '#common';
import type { BalancerProcessOptions } from '../../balancer/src/start.js';
import { dropIpSniWarning } from './sni-warning';

interface BalancerFlags {
  listen: string;
  ops: string;
  config?: string;
  accessLog?: string;
  methodMetrics: string;
  admin?: string;
  nodeId?: string;
  stateDir?: string;
  token?: string;
  statsIntervalMs: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  adminCa?: string;
  adminServerName?: string;
  adminCert?: string;
  adminKey?: string;
  maxConcurrentStreams: string;
  drainTimeoutMs: string;
  keepaliveMs: string;
  maxConnections: string;
  maxStreams: string;
  firstStreamTimeoutMs: string;
  maxPrematureResets: string;
  logLevel: string;
  workers: string;
}

export function balancerCommand(): Command {
  return new Command('balancer')
    .description('run a balancer (the data plane): proxies every gRPC call to the pool backend with the fewest active streams')
    .addOption(flag('--listen <host:port>', 'data-plane address (HTTP/2, gRPC)', 'LISTEN').default('0.0.0.0:9000'))
    .addOption(flag('--ops <host:port>', 'ops address: /metrics, /healthz, /readyz, /state', 'OPS').default('127.0.0.1:9901'))
    .addOption(flag('--config <file>', 'YAML or JSON configuration; SIGHUP re-reads it', 'CONFIG'))
    .addOption(flag('--admin <host:port[,host:port...]>', 'admin control-plane address to take configuration from; several (admins sharing one database) for failover', 'ADMIN'))
    .addOption(flag('--node-id <id>', 'this balancer\'s name towards the admin service', 'NODE_ID'))
    .addOption(flag('--state-dir <dir>', 'where the last applied configuration is kept (default ./data/balancer-<node-id>)', 'STATE_DIR'))
    .addOption(flag('--token <token>', 'token with the node scope for --admin', 'TOKEN'))
    .addOption(flag('--stats-interval-ms <ms>', 'how often stats are reported to the admin', 'STATS_INTERVAL_MS').default('5000'))
    .addOption(flag('--tls-cert <file>', 'serve TLS (ALPN h2) with this certificate chain (PEM)', 'TLS_CERT'))
    .addOption(flag('--tls-key <file>', 'private key for --tls-cert (PEM)', 'TLS_KEY'))
    .addOption(flag('--tls-client-ca <file>', 'require client certificates signed by this CA (mTLS; with --tls-cert)', 'TLS_CLIENT_CA'))
    .addOption(flag('--admin-ca <file>', 'speak TLS to --admin, verifying it against this CA (PEM)', 'ADMIN_CA'))
    .addOption(flag('--admin-server-name <name>', 'the name the admin\'s certificate must carry (default: the host of --admin)', 'ADMIN_SERVER_NAME'))
    .addOption(flag('--admin-cert <file>', 'client certificate for the admin (mTLS; with --admin-key and --admin-ca)', 'ADMIN_CERT'))
    .addOption(flag('--admin-key <file>', 'private key for --admin-cert', 'ADMIN_KEY'))
    .addOption(flag('--max-concurrent-streams <n>', 'SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients', 'MAX_CONCURRENT_STREAMS').default('10000'))
    .addOption(flag('--drain-timeout-ms <ms>', 'on SIGTERM/SIGINT, how long in-flight calls may take to finish', 'DRAIN_TIMEOUT_MS').default('30000'))
    .addOption(flag('--keepalive-ms <ms>', 'HTTP/2 PING interval towards clients (0 = off)', 'KEEPALIVE_MS').default('120000'))
    .addOption(flag('--max-connections <n>', 'client connections at once; more are closed on arrival', 'MAX_CONNECTIONS').default('10000'))
    .addOption(flag('--max-streams <n>', 'calls in flight across all client connections; more get RESOURCE_EXHAUSTED', 'MAX_STREAMS').default('100000'))
    .addOption(flag('--first-stream-timeout-ms <ms>', 'a client connection that starts no call within this time is closed', 'FIRST_STREAM_TIMEOUT_MS').default('10000'))
    .addOption(flag('--max-premature-resets <n>', 'streams a connection may reset before their answer (when half or more of its streams) before GOAWAY ENHANCE_YOUR_CALM; 0 = no limit', 'MAX_PREMATURE_RESETS').default('100'))
    .addOption(flag('--access-log <path|->', 'one JSON line per call (method, status, duration, pool, backend, attempts), appended to this file; - is standard output (off by default)', 'ACCESS_LOG'))
    .addOption(flag('--method-metrics <n>', 'calls and duration per gRPC method in /metrics, the first n methods by name and the rest as "other" (0: off)', 'METHOD_METRICS').default('0'))
    .addOption(flag('--workers <n>', 'data-plane worker processes behind the one listener (1: a single process)', 'WORKERS').default(String(availableParallelism())))
    .addOption(flag('--log-level <level>', 'fatal, error, warn, info, debug (one access-log line per call) or trace', 'LOG_LEVEL').default('info'))
    .addHelpText(
      'after',
      '\nExamples:\n  switchboard balancer --listen 127.0.0.1:9000 --ops 127.0.0.1:9901 --config examples/balancer.yaml\n  SWITCHBOARD_TOKEN=sbt_... switchboard balancer --admin 127.0.0.1:8081 --node-id edge-1\n',
    )
    .action(async (flags: BalancerFlags) => {
      const logger = processLogger('balancer', flags.logLevel);
      if (cluster.isWorker) logger.log = logger.log.child({ worker: cluster.worker!.id });
      const log = logger.log;
      if (Boolean(flags.config) === Boolean(flags.admin)) throw new Error('give either --config FILE.yaml or --admin HOST:PORT (with SWITCHBOARD_TOKEN)');
      if (flags.admin && !flags.token) throw new Error('--admin needs a token with the node scope: --token or SWITCHBOARD_TOKEN');
      if (Boolean(flags.tlsCert) !== Boolean(flags.tlsKey)) throw new Error('--tls-cert and --tls-key go together');
      if (flags.tlsClientCa && !flags.tlsCert) throw new Error('--tls-client-ca needs --tls-cert and --tls-key');
      if (Boolean(flags.adminCert) !== Boolean(flags.adminKey)) throw new Error('--admin-cert and --admin-key go together');
      if ((flags.adminCert || flags.adminServerName) && !flags.adminCa) throw new Error('--admin-cert, --admin-key and --admin-server-name need --admin-ca (TLS to the admin)');
      const workers = positiveInt(flags.workers, '--workers');
      if (workers > MAX_WORKERS) throw new Error(`--workers must be at most ${MAX_WORKERS} (one per core is the useful most), got ${workers}`);
      const drainTimeoutMs = positiveInt(flags.drainTimeoutMs, '--drain-timeout-ms', true);
      const options = processOptions(flags, workers, drainTimeoutMs);
      const { startBalancer, startBalancerWorker, listeningFields } = await import('../../balancer/src/start.js');
      // A worker of a multi-worker balancer: the data plane only, driven by its primary.
      if (cluster.isWorker) return startBalancerWorker(options, Number(process.env.SWITCHBOARD_WORKER_SLOT ?? 0), logger);
      if (flags.adminCa && !flags.adminServerName) dropIpSniWarning();
      const balancer = await startBalancer(options, logger);
      process.on('SIGHUP', () => balancer.hup());
      log.info(listeningFields(options, balancer), 'balancer listening');
      stopOnSignals(logger, () => balancer.stop(), drainTimeoutMs);
    });
}

/** The flags, checked, as the settings apps/balancer/src/start.ts starts a balancer with. */
function processOptions(flags: BalancerFlags, workers: number, drainTimeoutMs: number): BalancerProcessOptions {
  const nodeId = flags.nodeId ?? hostname();
  return {
    listen: parseHostPort(flags.listen, '--listen'),
    ops: parseHostPort(flags.ops, '--ops'),
    workers,
    drainTimeoutMs,
    dataPlane: {
      maxConcurrentStreams: positiveInt(flags.maxConcurrentStreams, '--max-concurrent-streams'),
      keepaliveIntervalMs: positiveInt(flags.keepaliveMs, '--keepalive-ms', true),
      maxConnections: positiveInt(flags.maxConnections, '--max-connections'),
      maxStreams: positiveInt(flags.maxStreams, '--max-streams'),
      firstStreamTimeoutMs: positiveInt(flags.firstStreamTimeoutMs, '--first-stream-timeout-ms'),
      maxPrematureResets: positiveInt(flags.maxPrematureResets, '--max-premature-resets', true),
    },
    ...(flags.tlsCert ? { listenerTls: { cert: flags.tlsCert, key: flags.tlsKey!, clientCa: flags.tlsClientCa } } : {}),
    ...(flags.accessLog ? { accessLog: flags.accessLog } : {}),
    methodMetrics: positiveInt(flags.methodMetrics, '--method-metrics', true),
    source: flags.admin
      ? {
          admin: {
            addresses: flags.admin.split(',').map((a) => formatHostPort(parseHostPort(a.trim(), '--admin'))),
            nodeId,
            token: flags.token!,
            ...(flags.stateDir ? { stateDir: flags.stateDir } : {}),
            statsIntervalMs: positiveInt(flags.statsIntervalMs, '--stats-interval-ms'),
            ...(flags.adminCa ? { tls: { ca: flags.adminCa, cert: flags.adminCert, key: flags.adminKey, serverName: flags.adminServerName } } : {}),
          },
        }
      : { file: flags.config! },
  };
}

/** More worker processes than this is a typo, not a machine: refused before forking anything. */
const MAX_WORKERS = 256;

function positiveInt(value: string, name: string, zeroOk = false): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < (zeroOk ? 0 : 1)) throw new Error(`${name} must be a whole number${zeroOk ? '' : ' above 0'}, got "${value}"`);
  return n;
}
