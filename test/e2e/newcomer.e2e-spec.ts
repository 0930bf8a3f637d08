/**
 * The newcomer's first hour (issue 21), where a test can see it: `npm start` and `npm test` skip
 * a build when nothing changed, and a test run's temporary folders go however the run ends.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { waitFor } from '../support/processes';

describe('the build is skipped when nothing changed', () => {
  it('scripts/build-if-changed.mjs says "up to date" at once after a build (npm test built before this ran)', () => {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ['scripts/build-if-changed.mjs'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('the build is up to date');
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('temporary folders of a test run', () => {
  it('are removed when the run is interrupted with SIGINT (Ctrl-C)', async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'switchboard-tmpbase-'));
    // A run's setup, as jest's globalSetup does it, then something written there, then Ctrl-C.
    const script = `import('${path.resolve('test/support/temp-root.mjs')}').then((m) => { m.setup(); require('node:fs').mkdirSync(require('node:path').join(require('node:os').tmpdir(), 'switchboard-admin-x'), { recursive: true }); console.log('ready ' + process.env.TMPDIR); setInterval(() => {}, 1000); });`;
    const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, TMPDIR: base }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const root = await waitFor('the run set up', () => /ready (\S+)/.exec(out)?.[1]);
    expect(existsSync(path.join(root, 'switchboard-admin-x'))).toBe(true);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    await exited;
    expect(existsSync(root)).toBe(false);
    expect(readdirSync(base)).toEqual([]);
  });
});
