/**
 * `npm run bench -- --only scale` (issue 15, the figures measured so far): an admin holding a
 * 1,000-pool x 10-backend configuration (about 0.5 MB), on SQLite and on PostgreSQL (a
 * throwaway server on 127.0.0.1, when Debian's postgresql is installed):
 * - whole-config PUT (each changing one backend's weight) and single-backend PATCH latency;
 * - bytes stored per single-backend change: the revision rows' columns (SQLite: their lengths;
 *   PostgreSQL: pg_column_size, i.e. as stored, compressed); the file's growth is no measure,
 *   SQLite's WAL reuses its pages;
 * - the admin's RSS afterwards.
 * - the admin's longest event-loop delay during those writes.
 * - bytes pushed to a balancer per single-backend change (2 balancers connected after the
 *   timed writes, so their applying does not share the 2 cores with them).
 * Propagation to 100 balancers on 2 admins is bench/fleet.ts (run after this one).
 */
import Database from 'libsql';
import * as hdr from 'hdr-histogram-js';
import { Client } from 'pg';
import { ADMIN_TOKEN, startAdmin, type AdminProcess } from '../test/support/admin';
import { rssMiB } from '../test/support/counting-backend';
import { createDatabase, startPostgres } from '../test/support/postgres';
import { startNode, waitFor } from '../test/support/processes';

export interface ScaleResult {
  db: string;
  backends: number;
  putMs: { p50: number; p99: number; max: number };
  patchMs: { p50: number; p99: number; max: number };
  bytesPerChange: number;
  adminRssMiB: number;
  /** The admin's longest event-loop delay during the PUTs and PATCHes (prom-client's monitor, reset at each scrape). */
  eventLoopMaxMs: number;
  /** The admin's RSS once idle: V8 returns the garbage of the writes within about a minute (its memory reducer). */
  settledRssMiB: number;
  /** Config bytes the admin wrote to one balancer per single-backend change (deltas), and for its first snapshot. */
  pushedBytesPerChange: number;
  snapshotBytes: number;
}

/** The admin's config bytes pushed so far, by kind. */
async function pushedBytes(admin: AdminProcess): Promise<{ snapshot: number; delta: number }> {
  const text = await (await fetch(`${admin.url}/metrics`)).text();
  const of = (kind: string) => Number(new RegExp(`^switchboard_admin_config_pushed_bytes_total\\{kind="${kind}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { snapshot: of('snapshot'), delta: of('delta') };
}

/** Two balancers join; then `changes` single-backend PATCHes: bytes pushed per change and balancer. */
async function pushes(admin: AdminProcess, changes: number): Promise<{ perChange: number; snapshot: number }> {
  const nodes = await Promise.all([0, 1].map((i) => startNode(admin.grpc, { nodeId: `scale-${i}`, token: ADMIN_TOKEN, statsIntervalMs: 10_000, extraArgs: ['--workers', '1'] })));
  try {
    const converged = async (revision: number) =>
      waitFor(`revision ${revision} on both balancers`, async () => ((await admin.api('GET', '/v1/nodes')).body.items as { appliedRevision: number | null }[]).filter((n) => n.appliedRevision === revision).length === 2, 60_000);
    const current = (await admin.api('GET', '/v1/revisions?limit=1')).body.items[0].number as number;
    await converged(current);
    const before = await pushedBytes(admin);
    let revision = current;
    for (let i = 0; i < changes; i++) {
      const r = await admin.api('PATCH', `/v1/pools/p-${(i * 7) % POOLS}/backends/127.0.0.1%3A20002`, { weight: 7 + i });
      if (r.status !== 200) throw new Error(`PATCH: ${r.status}`);
      revision = r.body.revision as number;
      await converged(revision);
    }
    const after = await pushedBytes(admin);
    return { perChange: Math.round((after.delta + after.snapshot - before.delta - before.snapshot) / (changes * nodes.length)), snapshot: Math.round(before.snapshot / nodes.length) };
  } finally {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
  }
}

/** The admin's event-loop delay maximum since its previous scrape, in ms. */
async function eventLoopMaxMs(admin: AdminProcess): Promise<number> {
  const text = await (await fetch(`${admin.url}/metrics`)).text();
  const m = /^switchboard_admin_nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text);
  return m ? Math.round(Number(m[1]) * 1000) : NaN;
}

const POOLS = 1000;
const PER_POOL = 10;

function config(weightOf: (pool: number, backend: number) => number): unknown {
  return {
    healthPolicies: [],
    pools: Array.from({ length: POOLS }, (_, p) => ({
      name: `p-${p}`,
      match: { services: [`bench.Service${p}`] },
      backends: Array.from({ length: PER_POOL }, (_, b) => ({ address: `127.0.0.1:${20000 + b}`, weight: weightOf(p, b) })),
    })),
  };
}

const summary = (h: hdr.Histogram) => ({ p50: Math.round(h.getValueAtPercentile(50)), p99: Math.round(h.getValueAtPercentile(99)), max: Math.round(h.maxValue) });

async function measure(label: string, admin: AdminProcess, storedBytes: () => Promise<number>, puts: number, patches: number): Promise<ScaleResult> {
  const first = await admin.api('PUT', '/v1/config', config(() => 1));
  if (first.status !== 200) throw new Error(`PUT /v1/config: ${first.status} ${JSON.stringify(first.body).slice(0, 300)}`);
  await eventLoopMaxMs(admin); // starts the window
  const put = hdr.build();
  for (let i = 0; i < puts; i++) {
    const t0 = performance.now();
    const r = await admin.api('PUT', '/v1/config', config((p, b) => (p === i && b === 0 ? 2 : 1)));
    put.recordValue(Math.max(1, performance.now() - t0));
    if (r.status !== 200) throw new Error(`PUT: ${r.status}`);
  }
  const before = await storedBytes();
  const patch = hdr.build();
  for (let i = 0; i < patches; i++) {
    const t0 = performance.now();
    const r = await admin.api('PATCH', `/v1/pools/p-${i % POOLS}/backends/127.0.0.1%3A20001`, { weight: 2 + (i % 5) });
    patch.recordValue(Math.max(1, performance.now() - t0));
    if (r.status !== 200) throw new Error(`PATCH: ${r.status}`);
  }
  const loopMs = await eventLoopMaxMs(admin);
  const after = await storedBytes();
  const rss = rssMiB(admin.proc.pid!).rss;
  const pushed = await pushes(admin, 10);
  // Idle: the lowest RSS over 60 s (V8 returned the garbage of the writes after about 45 s here).
  let settled = rssMiB(admin.proc.pid!).rss;
  for (let t = 0; t < 30; t++) {
    await new Promise((r) => setTimeout(r, 2000));
    settled = Math.min(settled, rssMiB(admin.proc.pid!).rss);
  }
  return {
    settledRssMiB: settled, db: label, backends: POOLS * PER_POOL, putMs: summary(put), patchMs: summary(patch), bytesPerChange: Math.round((after - before) / patches), adminRssMiB: rss, eventLoopMaxMs: loopMs, pushedBytesPerChange: pushed.perChange, snapshotBytes: pushed.snapshot };
}

export async function scaleScenario(quick: boolean, log: (line: string) => void): Promise<ScaleResult[]> {
  const puts = quick ? 5 : 20;
  const patches = quick ? 20 : 50;
  const results: ScaleResult[] = [];
  const sqlite = await startAdmin();
  try {
    const stored = async (): Promise<number> => {
      const db = new Database(sqlite.dbFile, { readonly: true });
      try {
        return Number((db.prepare('SELECT coalesce(sum(coalesce(length(config), 0) + coalesce(length(patch), 0) + length(diff)), 0) AS n FROM Revision').get() as { n: number }).n);
      } finally {
        db.close();
      }
    };
    const r = await measure('sqlite', sqlite, stored, puts, patches);
    results.push(r);
    log(`scale sqlite: PUT p50 ${r.putMs.p50} p99 ${r.putMs.p99} ms; PATCH p50 ${r.patchMs.p50} p99 ${r.patchMs.p99} ms; ${r.bytesPerChange} B/change; RSS ${r.adminRssMiB} MiB (idle ${r.settledRssMiB}); loop max ${r.eventLoopMaxMs} ms; pushed ${r.pushedBytesPerChange} B/change`);
  } finally {
    await sqlite.stop();
  }
  let pg: Awaited<ReturnType<typeof startPostgres>> | undefined;
  try {
    pg = await startPostgres();
  } catch (err) {
    log(`scale postgresql: skipped (${(err as Error).message})`);
  }
  if (pg) {
    const db = await createDatabase(pg.url);
    const admin = await startAdmin({ db });
    const size = async (): Promise<number> => {
      const c = new Client({ connectionString: db });
      await c.connect();
      const n = Number((await c.query(`SELECT coalesce(sum(pg_column_size(r.*)), 0) AS n FROM "Revision" r`)).rows[0].n);
      await c.end();
      return n;
    };
    try {
      const r = await measure('postgresql', admin, size, puts, patches);
      results.push(r);
      log(`scale postgresql: PUT p50 ${r.putMs.p50} p99 ${r.putMs.p99} ms; PATCH p50 ${r.patchMs.p50} p99 ${r.patchMs.p99} ms; ${r.bytesPerChange} B/change; RSS ${r.adminRssMiB} MiB (idle ${r.settledRssMiB}); loop max ${r.eventLoopMaxMs} ms; pushed ${r.pushedBytesPerChange} B/change`);
    } finally {
      await admin.stop();
      pg.stop();
    }
  }
  return results;
}

export function scaleTable(results: ScaleResult[], quick: boolean): string {
  const lines = [
    `### Scale: one admin holding ${POOLS} pools x ${PER_POOL} backends (${quick ? 5 : 20} whole-config PUTs, ${quick ? 20 : 50} single-backend PATCHes)`,
    '',
    '| database | PUT p50 ms | PUT p99 ms | PATCH p50 ms | PATCH p99 ms | PATCH max ms | bytes stored per change | admin RSS MiB after the writes / idle | event-loop delay max ms | bytes pushed per change and balancer | first snapshot bytes |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...results.map((r) => `| ${r.db} | ${r.putMs.p50} | ${r.putMs.p99} | ${r.patchMs.p50} | ${r.patchMs.p99} | ${r.patchMs.max} | ${r.bytesPerChange} | ${r.adminRssMiB} / ${r.settledRssMiB} | ${r.eventLoopMaxMs} | ${r.pushedBytesPerChange} | ${r.snapshotBytes} |`),
  ];
  return lines.join('\n');
}
