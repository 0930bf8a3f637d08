/**
 * `npm run bench`: the side-by-side benchmark of issue #2, all on 127.0.0.1.
 *
 * 1. Stall: three backends of equal capacity (200 calls/s each: 4 service slots x 20 ms, then a
 *    single-threaded 1 slot x 5 ms), one of which freezes for 400 ms every 2 s like a
 *    stop-the-world GC; open-loop load at 70% of the total capacity; latency percentiles and
 *    errors per algorithm (and NGINX when installed).
 * 2. Overhead: one fast backend, direct vs through the balancer (and NGINX): added latency at a
 *    moderate fixed rate, throughput at saturation, and the balancer's CPU time per call.
 *
 * 3. Death: one of three backends is killed under load, with and without health checks.
 *
 * Writes bench/results/<date>.json and prints the tables. `--quick` runs shorter windows;
 * 4. TLS to the backends: CPU per call over TLS against cleartext.
 *
 * 5. Tail (issue 12): the seed stall and seed slow scenarios, least_conn with and without
 *    hedging, least_response_time, p2c and NGINX least_conn (bench/tail.ts).
 *
 * 6. Scale (issue 15, so far): PUT/PATCH latency, bytes per change and RSS at 1k pools x 10
 *    backends, on SQLite and PostgreSQL (bench/scale.ts).
 *
 * 7. Workers (issue 13): h2load calls/s and CPU per call for --workers 1 and 2, the naive
 *    node:http2 relay and NGINX, and the long-streams spread with 2 workers (bench/workers.ts).
 *
 * 8. Fleet (issue 15): propagation to 100 balancers, on SQLite (1 admin) and PostgreSQL (2
 *    admins), with `--only scale` or alone with `--only fleet` (bench/fleet.ts).
 *
 * `--only stall|death|overhead|propagation|admin|tls|tail|streams|scale|fleet|workers` runs one scenario.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import { freePort, poolConfig, spawnBackend, startBalancer, type BackendProcess } from '../test/support/processes';
import { adminLatencyScenario, propagationScenario, type AdminLatencyResult, type PropagationResult } from './control-plane';
import { closedLoop, openLoop, SLOW_MS, type LoadResult } from './load-generator';
import { cpuMicros } from './cpu';
import { h2load, h2loadAvailable } from './h2load';
import { nginxAvailable, startNginx } from './nginx';
import { tlsCostScenario, type TlsCostResult } from './tls-cost';
import { tailScenarios, tailTable, type TailRow } from './tail';
import { scaleScenario, scaleTable, type ScaleResult } from './scale';
import { workersScenario, workersTable, type WorkersResult } from './workers';
import { fleetScenario, fleetTable, type FleetResult } from './fleet';
import { streamsScenario, streamsTable, type StreamsRow } from './streams';

const quick = process.argv.includes('--quick');
/** `--only stall|death|overhead|propagation|admin|tls` runs one scenario. */
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const runs = (name: string): boolean => only === undefined || only === name;
const WINDOW_S = quick ? 4 : 12;
const STALL_RATE = 420; // 70% of 3 x 200 calls/s
/** The death scenario offers 70% of what the two surviving backends can carry. */
const DEATH_RATE = 280;
const FIXED_RATE = 1000;
const SATURATION_CONCURRENCY = 64;

interface Row {
  scenario: string;
  proxy: string;
  algorithm: string;
  result: LoadResult;
  cpuUsPerCall?: number;
}

const rows: Row[] = [];
const hasNginx = nginxAvailable();
const hasH2load = h2loadAvailable();
const H2LOAD_CALLS = quick ? 20_000 : 60_000;

function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** One backend shape of the stall scenario: service slots x service time = 200 calls/s per backend. */
interface BackendShape {
  label: string;
  args: string[];
}

const SHAPES: BackendShape[] = [
  { label: 'stall (4 slots x 20 ms)', args: ['--service-ms', '20', '--concurrency', '4'] },
  { label: 'stall (1 slot x 5 ms)', args: ['--service-ms', '5', '--concurrency', '1'] },
];

async function stallScenario(shape: BackendShape): Promise<void> {
  const { label: scenario, args } = shape;
  const backends: BackendProcess[] = await Promise.all([
    spawnBackend('steady-1', args),
    spawnBackend('steady-2', args),
    spawnBackend('stalling', [...args, '--stall-every-ms', '2000', '--stall-ms', '400']),
  ]);
  const addresses = backends.map((b) => b.address);
  try {
    for (const algorithm of ['round_robin', 'least_conn', 'p2c', 'least_response_time']) {
      const lb = await startBalancer(poolConfig(addresses, { algorithm }));
      await openLoop(lb.listen, STALL_RATE, 1); // warm-up: connections, JIT
      const result = await openLoop(lb.listen, STALL_RATE, WINDOW_S);
      rows.push({ scenario, proxy: 'switchboard', algorithm, result });
      log(`${scenario}  switchboard ${algorithm.padEnd(20)} p99 ${result.p99Ms} ms, errors ${result.errors}`);
      await lb.stop();
    }
    if (hasNginx) {
      for (const algorithm of ['round_robin', 'least_conn'] as const) {
        const nginx = await startNginx(await freePort(), addresses, algorithm);
        await openLoop(nginx.address, STALL_RATE, 1);
        const result = await openLoop(nginx.address, STALL_RATE, WINDOW_S);
 rows.push({ scenario, proxy: 'nginx', algorithm, result });
        log(`${scenario}  nginx       ${algorithm.padEnd(20)} p99 ${result.p99Ms} ms, errors ${result.errors}`);
        await nginx.stop();
      }
    }
  } finally {
    await Promise.all(backends.map((b) => b.kill('SIGKILL')));
  }
}

/**
 * 3. A backend dies under load: one of three is killed (SIGKILL) a third into the window and
 * stays down. Compared: no health policy (transparent retry and connect backoff alone) and
 * active grpc.health.v1 checks every second plus passive ejection.
 */
async function deathScenario(): Promise<void> {
  const args = ['--service-ms', '5', '--concurrency', '1'];
  const variants: { name: string; config: (addresses: string[]) => unknown }[] = [
    { name: 'no health checks', config: (addresses) => poolConfig(addresses) },
    {
      name: 'active + passive checks',
      config: (addresses) => ({
        healthPolicies: [
          {
            name: 'checks',
            active: { protocol: 'grpc', service: '', intervalMs: 1000, timeoutMs: 500, healthyThreshold: 2, unhealthyThreshold: 2 },
            passive: { consecutiveFailures: 3, baseEjectionMs: 30000, maxEjectionPercent: 50 },
          },
        ],
        pools: [{ name: 'echo', match: { services: ['*'] }, healthPolicy: 'checks', backends: addresses.map((address) => ({ address })) }],
      }),
    },
  ];
  for (const variant of variants) {
    const backends = await Promise.all(['d1', 'd2', 'd3'].map((n) => spawnBackend(n, args)));
    const lb = await startBalancer(variant.config(backends.map((b) => b.address)));
    try {
      await new Promise((r) => setTimeout(r, 1500)); // first health checks
      await openLoop(lb.listen, DEATH_RATE, 1);
      const kill = setTimeout(() => void backends[2]!.kill('SIGKILL'), (WINDOW_S * 1000) / 3);
      const result = await openLoop(lb.listen, DEATH_RATE, WINDOW_S);
      clearTimeout(kill);
      rows.push({ scenario: 'death', proxy: 'switchboard', algorithm: variant.name, result });
      log(`death  ${variant.name.padEnd(24)} errors ${result.errors}, p99 ${result.p99Ms} ms`);
    } finally {
      await lb.stop();
      await Promise.all(backends.map((b) => b.kill('SIGKILL')));
    }
  }
}

async function overheadScenario(): Promise<void> {
  const backend = await spawnBackend('fast');
  try {
    const targets: { proxy: string; address: string; pid?: number; stop: () => Promise<unknown> }[] = [
      { proxy: 'direct', address: backend.address, stop: async () => {} },
    ];
    const lb = await startBalancer(poolConfig([backend.address]));
    targets.push({ proxy: 'switchboard', address: lb.listen, pid: lb.proc.pid, stop: () => lb.stop() });
    if (hasNginx) {
      const nginx = await startNginx(await freePort(), [backend.address], 'least_conn');
      targets.push({ proxy: 'nginx', address: nginx.address, pid: nginx.proc.pid, stop: () => nginx.stop() });
    }
    for (const t of targets) {
      await openLoop(t.address, FIXED_RATE, 1);
      const fixed = await openLoop(t.address, FIXED_RATE, WINDOW_S);
      rows.push({ scenario: `fixed ${FIXED_RATE}/s`, proxy: t.proxy, algorithm: 'least_conn', result: fixed });
      const cpu0 = t.pid ? cpuMicros(t.pid) : 0;
      const sat = await closedLoop(t.address, SATURATION_CONCURRENCY, WINDOW_S);
      const cpuUsPerCall = t.pid ? Math.round((cpuMicros(t.pid) - cpu0) / sat.calls) : undefined;
      rows.push({ scenario: `saturation (${SATURATION_CONCURRENCY} in flight)`, proxy: t.proxy, algorithm: 'least_conn', result: sat, cpuUsPerCall });
      log(`overhead ${t.proxy.padEnd(12)} fixed p50 ${fixed.p50Ms} p99 ${fixed.p99Ms} ms; saturation ${sat.callsPerS} calls/s${cpuUsPerCall ? `, ${cpuUsPerCall} µs CPU/call` : ''}`);
      if (hasH2load) {
        h2load(t.address, 2000);
        const c0 = t.pid ? cpuMicros(t.pid) : 0;
        const h = h2load(t.address, H2LOAD_CALLS);
        const cpu = t.pid ? Math.round((cpuMicros(t.pid) - c0) / h.calls) : undefined;
        const result: LoadResult = { calls: h.calls, errors: h.failed, errorCodes: {}, durationS: 0, callsPerS: h.callsPerS, p50Ms: NaN, p90Ms: NaN, p99Ms: NaN, p999Ms: NaN, maxMs: NaN };
        rows.push({ scenario: 'saturation, h2load (4 conns x 32 streams)', proxy: t.proxy, algorithm: 'least_conn', result, cpuUsPerCall: cpu });
        log(`overhead ${t.proxy.padEnd(12)} h2load ${h.callsPerS} calls/s${cpu ? `, ${cpu} µs CPU/call` : ''}`);
      }
    }
    for (const t of targets) await t.stop();
  } finally {
    await backend.kill('SIGKILL');
  }
}

function table(): string {
  const lines: string[] = [];
  const find = (scenario: string, proxy: string, algorithm?: string): Row | undefined =>
    rows.find((r) => r.scenario === scenario && r.proxy === proxy && (algorithm === undefined || r.algorithm === algorithm));
  for (const { label } of SHAPES) {
    lines.push(`### 1. ${label}: one of three backends stalls 400 ms every 2 s; open loop at ${STALL_RATE} calls/s (70% of capacity), ${WINDOW_S} s each`);
    lines.push('');
    lines.push(`| proxy | algorithm | calls | errors | p50 ms | p99 ms | p99.9 ms | max ms | calls over ${SLOW_MS} ms |`);
    lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows.filter((x) => x.scenario === label)) {
      const x = r.result;
      const slow = `${((x.slowShare ?? 0) * 100).toFixed(2)}%`;
      lines.push(`| ${r.proxy} | ${r.algorithm} | ${x.calls} | ${x.errors} | ${x.p50Ms} | ${x.p99Ms} | ${x.p999Ms} | ${x.maxMs} | ${slow} |`);
    }
    const rr = find(label, 'switchboard', 'round_robin');
    const lc = find(label, 'switchboard', 'least_conn');
    const nrr = find(label, 'nginx', 'round_robin');
    const nlc = find(label, 'nginx', 'least_conn');
    lines.push('');
    if (rr && lc) {
      lines.push(`least_conn p99 / round_robin p99 = **${(lc.result.p99Ms / rr.result.p99Ms).toFixed(3)}** (target at most 0.2)`);
      lines.push(`least_conn / round_robin share of calls over ${SLOW_MS} ms = **${((lc.result.slowShare ?? 0) / (rr.result.slowShare || 1)).toFixed(3)}**`);
    }
    if (nrr && nlc) lines.push(`nginx: least_conn p99 / round_robin p99 = **${(nlc.result.p99Ms / nrr.result.p99Ms).toFixed(3)}**`);
    if (lc && nlc) lines.push(`switchboard least_conn p99 / nginx least_conn p99 = **${(lc.result.p99Ms / nlc.result.p99Ms).toFixed(2)}**`);
    lines.push('');
  }
  lines.push(`### 3. One of three backends (1 slot x 5 ms) is killed a third into the window; least_conn, open loop at ${DEATH_RATE} calls/s (70% of the survivors' capacity), ${WINDOW_S} s`);
  lines.push('');
  lines.push('| health policy | calls | errors | error codes | p50 ms | p99 ms | p99.9 ms | max ms |');
  lines.push('|---|---:|---:|---|---:|---:|---:|---:|');
  for (const r of rows.filter((x) => x.scenario === 'death')) {
    const x = r.result;
    lines.push(`| ${r.algorithm} | ${x.calls} | ${x.errors} | ${JSON.stringify(x.errorCodes)} | ${x.p50Ms} | ${x.p99Ms} | ${x.p999Ms} | ${x.maxMs} |`);
  }
  lines.push('');
  lines.push(`### 2. Proxy overhead: one backend answering at once`);
  lines.push('');
  lines.push('| scenario | path | calls/s | p50 ms | p99 ms | added p50 ms | added p99 ms | balancer CPU µs/call |');
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|');
  const f = (n: number): string => (Number.isNaN(n) ? '' : String(n));
  for (const r of rows.filter((x) => !x.scenario.startsWith('stall') && x.scenario !== 'death')) {
    const direct = find(r.scenario, 'direct')!.result;
    const x = r.result;
    const added = r.proxy === 'direct' || Number.isNaN(x.p50Ms) ? ['', ''] : [(x.p50Ms - direct.p50Ms).toFixed(2), (x.p99Ms - direct.p99Ms).toFixed(2)];
    lines.push(`| ${r.scenario} | ${r.proxy} | ${x.callsPerS} | ${f(x.p50Ms)} | ${f(x.p99Ms)} | ${added[0]} | ${added[1]} | ${r.cpuUsPerCall ?? ''} |`);
  }
  const satName = `saturation (${SATURATION_CONCURRENCY} in flight)`;
  const sd = find(satName, 'direct');
  const ss = find(satName, 'switchboard');
  const sn = find(satName, 'nginx');
  lines.push('');
  if (sd && ss) lines.push(`saturation throughput switchboard / direct = **${(ss.result.callsPerS / sd.result.callsPerS).toFixed(2)}**`);
  if (ss && sn) lines.push(`saturation throughput switchboard / nginx = **${(ss.result.callsPerS / sn.result.callsPerS).toFixed(2)}**`);
  const h2Name = 'saturation, h2load (4 conns x 32 streams)';
  const hs = find(h2Name, 'switchboard');
  const hn = find(h2Name, 'nginx');
  const hd = find(h2Name, 'direct');
  if (hs && hd) lines.push(`h2load throughput switchboard / direct = **${(hs.result.callsPerS / hd.result.callsPerS).toFixed(2)}**`);
  if (hs && hn) lines.push(`h2load throughput switchboard / nginx = **${(hs.result.callsPerS / hn.result.callsPerS).toFixed(2)}**; CPU per call switchboard / nginx = **${((hs.cpuUsPerCall ?? 0) / (hn.cpuUsPerCall ?? 1)).toFixed(2)}**`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const started = new Date();
  log(`switchboard benchmark: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}, nginx ${hasNginx ? 'found' : 'not installed (apt-get install nginx-light to compare)'}`);
  if (runs('stall')) for (const shape of SHAPES) await stallScenario(shape);
  if (runs('death')) await deathScenario();
  if (runs('overhead')) await overheadScenario();
  let propagation: PropagationResult | undefined;
  let adminLatency: AdminLatencyResult[] | undefined;
  if (runs('propagation')) {
    log('propagation: 5 balancers, 100 writes through the REST API');
    propagation = await propagationScenario(quick ? 30 : 100);
  }
  if (runs('admin')) {
    log('admin latency: autocannon at 200 requests/s');
    adminLatency = await adminLatencyScenario(quick ? 4 : 10);
  }
  let tlsCost: TlsCostResult | undefined;
  if (runs('tls')) {
    log('tls: CPU per call with TLS to the backend vs cleartext');
    tlsCost = await tlsCostScenario(cpuMicros, H2LOAD_CALLS, quick ? 2 : 3);
  }
  let tail: TailRow[] | undefined;
  const tailSeconds = quick ? 10 : 30;
  if (runs('tail')) {
    log(`tail: seed stall and seed slow, ${tailSeconds} s per variant`);
    tail = await tailScenarios(tailSeconds, log);
  }
  let streams: StreamsRow[] | undefined;
  if (runs('streams')) {
    log('streams: 300 long-lived streams, 3 -> 6 backends, rebalanced');
    streams = await streamsScenario(quick ? 1 : 3, log);
  }
  let scale: ScaleResult[] | undefined;
  if (runs('scale')) {
    log('scale: 1k pools x 10 backends on SQLite and PostgreSQL');
    scale = await scaleScenario(quick, log);
  }
  let fleet: FleetResult[] | undefined;
  if (runs('scale') || only === 'fleet') {
    log('fleet: propagation to balancers on the control plane, SQLite (1 admin) and PostgreSQL (2 admins)');
    fleet = await fleetScenario(quick ? 20 : 100, quick ? 10 : 50, log);
  }
  let workers: WorkersResult | undefined;
  if (runs('workers') && hasH2load) {
    log('workers: h2load through --workers 1 and 2, the naive relay and NGINX');
    workers = await workersScenario(H2LOAD_CALLS, quick ? 2 : 3, WINDOW_S, log);
  }
  let out = rows.length > 0 ? table() : '';
  if (workers) out += `\n\n${workersTable(workers)}`;
  if (tail) out += `\n\n${tailTable(tail, tailSeconds)}`;
  if (streams) out += `\n\n${streamsTable(streams)}`;
  if (scale) out += `\n\n${scaleTable(scale, quick)}`;
  if (fleet) out += `\n\n${fleetTable(fleet)}`;
  if (tlsCost) {
    const t = tlsCost;
    out += `\n\n### 4. TLS to the backends (${t.tool}, ${t.calls} calls x ${t.rounds} rounds, interleaved; clients in cleartext)\n\n| upstream | balancer CPU µs/call | calls/s |\n|---|---|---|\n`;
    out += `| cleartext | ${t.cleartext.cpuUsPerCall.join(', ')} | ${t.cleartext.callsPerS.join(', ')} |\n| TLS | ${t.tls.cpuUsPerCall.join(', ')} | ${t.tls.callsPerS.join(', ')} |\n`;
    out += `\nCPU per call TLS / cleartext (medians) = **${t.ratio}**`;
  }
  if (propagation) {
    const p = propagation;
    out += `\n\n### Config propagation: ${p.balancers} balancers, ${p.writes} writes through the REST API, one at a time\n\n| measured from | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|\n`;
    out += `| the write's HTTP response | ${p.fromResponse.p50Ms} | ${p.fromResponse.p99Ms} | ${p.fromResponse.maxMs} |\n| the write's request | ${p.fromRequest.p50Ms} | ${p.fromRequest.p99Ms} | ${p.fromRequest.maxMs} |\n`;
    out += `\n${(p.beforeResponse * 100).toFixed(1)}% of applications happened before the HTTP response reached the client (the push leaves at commit).`;
  }
  if (adminLatency) {
    out += '\n\n### Admin REST latency (autocannon, 10 connections, fixed rate)\n\n| route | req/s | requests | non-2xx | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|---:|\n';
    for (const r of adminLatency) out += `| ${r.route} | ${r.rate} | ${r.requests} | ${r.non2xx} | ${r.p50Ms} | ${r.p90Ms} | ${r.p99Ms} | ${r.maxMs} |\n`;
  }
  log('');
  log(out);
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/${started.toISOString().slice(0, 19).replace(/:/g, '-')}.json`;
  writeFileSync(
    file,
    JSON.stringify({ date: started.toISOString(), machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version }, quick, rows, propagation, adminLatency, tlsCost, tail, streams, scale, workers, fleet }, null, 2),
  );
  log(`\nresults: ${file}`);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
