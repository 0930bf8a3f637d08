// `npm start`: the whole product on one machine. Starts the admin service on SQLite
// (./data/switchboard.db, migrated on start) and one balancer connected to it, prints where
// everything is and the bootstrap admin token, and stops both cleanly on Ctrl-C.
// `npm start` builds first (package.json prestart). Addresses can be changed with
// SWITCHBOARD_HTTP, SWITCHBOARD_GRPC, SWITCHBOARD_LISTEN, SWITCHBOARD_OPS and SWITCHBOARD_DB.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';

const http = process.env.SWITCHBOARD_HTTP ?? '127.0.0.1:8080';
const grpc = process.env.SWITCHBOARD_GRPC ?? '127.0.0.1:8081';
const listen = process.env.SWITCHBOARD_LISTEN ?? '127.0.0.1:9000';
const ops = process.env.SWITCHBOARD_OPS ?? '127.0.0.1:9901';
const db = process.env.SWITCHBOARD_DB ?? 'file:./data/switchboard.db';
const dataDir = path.dirname(path.resolve(db.replace(/^file:/, '')));

const children = [];
function run(name, args, env = {}) {
  // stdin is a pipe only we hold: when this process dies, however it dies, the kernel closes it
  // and the child stops itself (SWITCHBOARD_EXIT_WITH_PARENT), instead of living on, orphaned, on its ports.
  // Each child in its own process group: Ctrl-C signals the terminal's foreground group, and a
  // child that got that SIGINT and then this script's SIGTERM took the second as "exit now",
  // skipping the drain. This script alone stops them, with one SIGTERM each.
  const child = spawn(process.execPath, ['bin/switchboard.js', ...args], {
    detached: true,
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, ...env, SWITCHBOARD_EXIT_WITH_PARENT: '1' },
  });
  children.push(child);
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`switchboard ${name} exited (${signal ?? code}); stopping`);
      stop(1);
    }
  });
  return child;
}

/** Resolves with the first JSON log line whose msg is `msg`; echoes every line. */
function lineWith(child, msg) {
  return new Promise((resolve) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      process.stdout.write(`${line}\n`);
      try {
        const o = JSON.parse(line);
        if (o.msg === msg) resolve(o);
      } catch {
        /* not JSON */
      }
    });
  });
}

let stopping = false;
function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  let left = children.filter((c) => c.exitCode === null && c.signalCode === null).length;
  if (left === 0) process.exit(code);
  for (const c of children) {
    c.once('exit', () => --left === 0 && process.exit(code));
    c.kill('SIGTERM');
  }
}
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => stop(0));

const admin = run('admin', ['admin', '--http', http, '--grpc', grpc, '--db', db]);
await lineWith(admin, 'admin listening');
const tokenFile = path.join(dataDir, 'admin-token');
const token = process.env.SWITCHBOARD_ADMIN_TOKEN ?? (existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined);
if (!token) {
  console.error(`no admin token: set SWITCHBOARD_ADMIN_TOKEN (the generated one in ${tokenFile} is gone)`);
  stop(1);
} else {
  const balancer = run('balancer', ['balancer', '--listen', listen, '--ops', ops, '--admin', grpc, '--node-id', 'local', '--state-dir', path.join(dataDir, 'balancer-local')], {
    SWITCHBOARD_TOKEN: token,
  });
  await lineWith(balancer, 'balancer listening');
  console.log(`
Switchboard is running
  dashboard         http://${http}/ui            (sign in with the admin token below)
  REST API + docs   http://${http}/docs          (OpenAPI: http://${http}/openapi.json)
  admin token       ${token}
                    (stored in ${tokenFile}; export SWITCHBOARD_TOKEN=... for the CLI)
  gRPC data plane   ${listen}          (point grpc clients here)
  balancer metrics  http://${ops}/metrics   state: http://${ops}/state
  admin metrics     http://${http}/metrics
  control plane     ${grpc}
Try: curl -H "Authorization: Bearer ${token.slice(0, 8)}..." http://${http}/v1/pools    or    npm run demo
Ctrl-C stops both.
`);
}
