// Issue 27, defect 4: four node streams each report 30,000 backends that are not in the config (with
// 4294967295 streams, p99 1e308 and a backend listed twice with a "constructor" code). Prints the size
// and time of /v1/stats and /metrics and the admin's RSS, for the built checkout in the current
// directory (run it from an older checkout to compare). Usage: node scripts/repro-hostile-stats.mjs
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
const require = createRequire(path.join(process.cwd(), 'x.js'));
const grpc = require('@grpc/grpc-js');
const { controlPlane } = require(path.join(process.cwd(), 'dist/libs/proto/src/index.js'));
const dir = mkdtempSync(path.join(tmpdir(), 'junk-'));
const TOKEN = 'sbt_junk_test_admin_token';
const admin = spawn(process.execPath, ['bin/switchboard.js', 'admin', '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--db', `file:${dir}/db`], { env: { ...process.env, SWITCHBOARD_ADMIN_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'inherit'] });
const ready = await new Promise((resolve) => { let buf = ''; admin.stdout.on('data', (d) => { buf += d; for (const l of buf.split('\n')) { try { const o = JSON.parse(l); if (o.msg === 'admin listening') resolve(o); } catch {} } }); });
const url = `http://${ready.http}`;
const api = async (m, p, body) => { const r = await fetch(url + p, { method: m, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) }); return { status: r.status, text: await r.text() }; };
const rss = () => Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${admin.pid}/status`, 'utf8'))[1]) / 1024);
await api('PUT', '/v1/pools/a', { match: { services: ['*'] }, backends: [{ address: '127.0.0.1:1111' }] });
const node = JSON.parse((await api('POST', '/v1/tokens', { name: 'n', scopes: ['node'] })).text).token;
const rssBefore = rss();
const { Client } = controlPlane();
const streams = [];
for (let k = 0; k < 4; k++) {
  const c = new Client(ready.grpc, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 64 << 20 });
  const md = new grpc.Metadata(); md.set('authorization', `Bearer ${node}`);
  const s = c.Connect(md); s.on('error', () => {}); s.on('data', () => {});
  s.write({ message: 'hello', hello: { nodeId: `junk-${k}`, appliedRevision: 0, version: 'x' } });
  const backends = Array.from({ length: 30000 }, (_, i) => ({ address: `127.0.0.${1 + (i % 200)}:${2000 + i}`, activeStreams: 4294967295, callsByCode: { OK: 1, constructor: 1 }, p50Ms: 1, p90Ms: 2, p99Ms: 1e308, healthy: true, ejected: false, draining: false }));
  s.write({ message: 'stats', stats: { atMs: Date.now(), appliedRevision: 1, pools: [{ name: `ghost-${k}`, panic: false, backends }, { name: 'a', panic: false, backends: [{ address: '127.0.0.1:1111', activeStreams: 1, callsByCode: { OK: 1 }, p50Ms: 1, p90Ms: 1, p99Ms: 1, healthy: true, ejected: false, draining: false }, { address: '127.0.0.1:1111', activeStreams: 1, callsByCode: { constructor: 1 }, p50Ms: 1, p90Ms: 1, p99Ms: 1, healthy: true, ejected: false, draining: false }] }] } });
  streams.push({ c, s });
}
await new Promise((r) => setTimeout(r, 4000));
let t = Date.now(); const stats = await api('GET', '/v1/stats'); const statsMs = Date.now() - t;
t = Date.now(); const metrics = await fetch(`${url}/metrics`); const mtext = await metrics.text(); const metricsMs = Date.now() - t;
const rssAfter = rss();
for (const { s, c } of streams) { s.end(); c.close(); }
await new Promise((r) => setTimeout(r, 2000));
console.log(JSON.stringify({ checkout: process.cwd(), stats: { status: stats.status, bytes: stats.text.length, ms: statsMs }, metrics: { status: metrics.status, bytes: mtext.length, ms: metricsMs }, rssMiB: { before: rssBefore, withReports: rssAfter, afterLeft: rss() } }));
admin.kill('SIGKILL');
process.exit(0);
