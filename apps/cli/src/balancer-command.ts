/** `switchboard balancer`: runs the data plane from a YAML/JSON file (or, later, from the admin service). */
import cluster from 'node:cluster';
import { availableParallelism, hostname } from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';
import { processLogger, type ProcessLogger } from './process-logger';
import { flag, stopOnSignals } from './server-process';
import { formatHostPort, parseHostPort, TlsFiles, type TlsMaterial } from '#common';
import type { HostPort } from '../../balancer/src/balancer.js';
import type { DataPlaneOptions } from '../../balancer/src/proxy/data-plane-server.js';
import { AccessLog } from '../../balancer/src/ops/access-log.js';
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
      // A worker of a multi-worker balancer: the data plane only, driven by its primary.
      if (cluster.isWorker) return runWorker(flags, logger, drainTimeoutMs);

      let sourceRef: { tlsChanged(): void } | null = null;
      if (flags.adminCa && !flags.adminServerName) dropIpSniWarning();
      const adminTls = flags.adminCa ? new TlsFiles({ ca: flags.adminCa, cert: flags.adminCert, key: flags.adminKey }, 'admin client', log, () => sourceRef?.tlsChanged()).watch() : null;
      const [{ Balancer }, { BalancerPrimary }, { AdminConfigSource }, { FileConfigSource }] = await Promise.all([
        import('../../balancer/src/balancer.js'),
        import('../../balancer/src/cluster/primary.js'),
        import('../../balancer/src/config/admin-config-source.js'),
        import('../../balancer/src/config/file-config-source.js'),
      ]);
      // Certificates are read now (a bad file stops the start) and re-read on SIGHUP or when they
      // change; with workers, each worker serves (and watches) them itself.
      let single: InstanceType<typeof Balancer> | null = null;
      const listenerTls = flags.tlsCert ? new TlsFiles({ cert: flags.tlsCert, key: flags.tlsKey, ca: flags.tlsClientCa }, 'data listener', log, (m) => single?.setListenerTls(m)) : null;
      const balancer =
        workers > 1
          ? new BalancerPrimary({
              workers,
              listen: parseHostPort(flags.listen, '--listen'),
              ops: parseHostPort(flags.ops, '--ops'),
              drainTimeoutMs,
              logger: log,
              output: { stdout: (chunk) => logger.write(chunk), stderr: (chunk) => void process.stderr.write(chunk) },
            })
          : (single = new Balancer({ ...dataPlaneOptions(flags, listenerTls?.watch().material), ops: parseHostPort(flags.ops, '--ops'), drainTimeoutMs, logger: log, ...accessLogOf(flags) }));
      const nodeId = flags.nodeId ?? hostname();
      const source = flags.admin
        ? new AdminConfigSource({
            addresses: flags.admin.split(',').map((a) => formatHostPort(parseHostPort(a.trim(), '--admin'))),
            nodeId,
            token: flags.token!,
            stateDir: flags.stateDir ?? path.join('data', `balancer-${nodeId}`),
            statsIntervalMs: positiveInt(flags.statsIntervalMs, '--stats-interval-ms'),
            stats: () => balancer.collectStats(),
            log,
            ...(adminTls ? { tls: { material: () => adminTls.material, serverName: flags.adminServerName } } : {}),
          })
        : new FileConfigSource(flags.config!, log);
      if (source instanceof AdminConfigSource) sourceRef = source;
      process.on('SIGHUP', () => {
        adminTls?.reload('SIGHUP');
        if (single) {
          listenerTls?.reload('SIGHUP');
          single.reloadUpstreamTls('SIGHUP');
        } else (balancer as InstanceType<typeof BalancerPrimary>).hup();
      });
      const addresses = await balancer.start(source);
      log.info(
        {
          listen: formatHostPort(addresses.listen),
          ops: addresses.ops && formatHostPort(addresses.ops),
          revision: single ? single.revision : (balancer as InstanceType<typeof BalancerPrimary>).servingRevision,
          workers,
          tls: Boolean(flags.tlsCert),
          clientCertificates: Boolean(flags.tlsClientCa),
          ...(flags.admin ? { admin: flags.admin, nodeId } : {}),
        },
        'balancer listening',
      );
      stopOnSignals(logger, () => balancer.stop(), drainTimeoutMs);
    });
}

/** The data-plane settings every process that serves calls takes from the flags. */
function dataPlaneOptions(flags: BalancerFlags, tls: TlsMaterial | undefined, share: (limit: number) => number = (n) => n): { listen: HostPort; dataPlane: Partial<DataPlaneOptions> } {
  return {
    listen: parseHostPort(flags.listen, '--listen'),
    dataPlane: {
      maxConcurrentStreams: positiveInt(flags.maxConcurrentStreams, '--max-concurrent-streams'),
      keepaliveIntervalMs: positiveInt(flags.keepaliveMs, '--keepalive-ms', true),
      maxConnections: share(positiveInt(flags.maxConnections, '--max-connections')),
      maxStreams: share(positiveInt(flags.maxStreams, '--max-streams')),
      firstStreamTimeoutMs: positiveInt(flags.firstStreamTimeoutMs, '--first-stream-timeout-ms'),
      maxPrematureResets: positiveInt(flags.maxPrematureResets, '--max-premature-resets', true),
      ...(tls ? { tls: { cert: tls.cert!, key: tls.key!, ca: tls.ca } } : {}),
    },
  };
}

/**
 * One worker of a multi-worker balancer: a Balancer without ops endpoint or config source, whose
 * health and ejection verdicts come from the primary (see apps/balancer/src/cluster).
 * --max-connections and --max-streams are the balancer's totals: each worker enforces its share
 * (the primary hands connections out round robin, so the shares fill alike). It does not listen:
 * the primary accepts each connection and hands it over (apps/balancer/src/cluster/connection-handoff.ts).
 */
async function runWorker(flags: BalancerFlags, logger: ProcessLogger, drainTimeoutMs: number): Promise<void> {
  const workers = positiveInt(flags.workers, '--workers');
  const slot = Number(process.env.SWITCHBOARD_WORKER_SLOT ?? 0);
  const share = (limit: number): number => Math.max(1, Math.floor(limit / workers) + (slot < limit % workers ? 1 : 0));
  const log = logger.log;
  const [{ Balancer }, { WorkerLink }, { WorkerVerdicts }] = await Promise.all([
    import('../../balancer/src/balancer.js'),
    import('../../balancer/src/cluster/worker-link.js'),
    import('../../balancer/src/cluster/worker-verdicts.js'),
  ]);
  let balancerRef: { setListenerTls(m: TlsMaterial): void } | null = null;
  const listenerTls = flags.tlsCert
    ? new TlsFiles({ cert: flags.tlsCert, key: flags.tlsKey, ca: flags.tlsClientCa }, 'data listener', log, (m) => balancerRef?.setListenerTls(m)).watch()
    : null;
  const verdicts = new WorkerVerdicts((runs) => WorkerLink.send({ t: 'outcomes', runs }));
  const balancer = new Balancer({ ...dataPlaneOptions(flags, listenerTls?.material, share), connectionsFromPrimary: true, budgetShare: 1 / workers, ...accessLogOf(flags), ops: null, drainTimeoutMs, logger: log, verdicts });
  balancerRef = balancer;
  const stop = (): void => {
    balancer.stop().then(
      () => void logger.flush(500).then(() => process.exit(0)),
      () => process.exit(1),
    );
  };
  new WorkerLink(
    balancer,
    verdicts,
    {
      hup: () => {
        listenerTls?.reload('SIGHUP');
        balancer.reloadUpstreamTls('SIGHUP');
      },
      stop,
    },
    log,
  ).start();
}

/** --access-log: each process that serves calls appends its own lines (whole lines, O_APPEND). */
function accessLogOf(flags: BalancerFlags): { accessLog?: AccessLog; methodMetrics: number } {
  const methodMetrics = positiveInt(flags.methodMetrics, '--method-metrics', true);
  return { methodMetrics, ...(flags.accessLog ? { accessLog: AccessLog.open(flags.accessLog) } : {}) };
}

/** More worker processes than this is a typo, not a machine: refused before forking anything. */
const MAX_WORKERS = 256;

function positiveInt(value: string, name: string, zeroOk = false): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < (zeroOk ? 0 : 1)) throw new Error(`${name} must be a whole number${zeroOk ? '' : ' above 0'}, got "${value}"`);
  return n;
}
