/**
 * `npm run api-client` regenerates the typed admin API client from the admin's own OpenAPI
 * document: it starts the built admin on a scratch SQLite file, reads /openapi.json, and writes
 * libs/api-client/openapi.json and libs/api-client/src/schema.ts (openapi-typescript).
 * `npm run api-client -- --check` writes nothing and exits 1 when the committed files differ
 * (a test does the same against a running admin, so CI fails on a stale client).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { renderSchema } from './api-client-render.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const check = process.argv.includes('--check');
const dir = mkdtempSync(path.join(tmpdir(), 'switchboard-openapi-'));
const admin = spawn(process.execPath, [path.join(root, 'bin/switchboard.js'), 'admin', '--http', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--db', `file:${path.join(dir, 'db')}`], {
  stdio: ['ignore', 'pipe', 'inherit'],
  env: { ...process.env, SWITCHBOARD_ADMIN_TOKEN: 'openapi-generation-only' },
});
try {
  const http = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the admin did not start within 20 s')), 20_000);
    admin.once('exit', (code) => reject(new Error(`the admin exited with ${code}`)));
    createInterface({ input: admin.stdout }).on('line', (line) => {
      try {
        const o = JSON.parse(line);
        if (o.msg === 'admin listening') {
          clearTimeout(timer);
          resolve(o.http);
        }
      } catch {
        /* not JSON */
      }
    });
  });
  const document = await (await fetch(`http://${http}/openapi.json`)).json();
  const files = {
    'libs/api-client/openapi.json': `${JSON.stringify(document, null, 2)}\n`,
    'libs/api-client/src/schema.ts': await renderSchema(document),
  };
  let stale = 0;
  for (const [file, text] of Object.entries(files)) {
    const full = path.join(root, file);
    let old = '';
    try {
      old = readFileSync(full, 'utf8');
    } catch {
      /* new */
    }
    if (old === text) continue;
    if (check) {
      stale++;
      process.stderr.write(`${file} does not match the admin's OpenAPI document: run npm run api-client\n`);
    } else {
      writeFileSync(full, text);
      process.stdout.write(`wrote ${file}\n`);
    }
  }
  process.exitCode = stale > 0 ? 1 : 0;
} finally {
  admin.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
