// One temporary folder per test run (jest globalSetup/globalTeardown): TMPDIR points into it, so
// every temporary file of the tests and of the processes they start (admins, balancers, SQLite
// files, certificates, PostgreSQL clusters) lands there, and it is removed when the run ends,
// however it ends: normally, on Ctrl-C or SIGTERM, or, after a kill -9, by the next run (the
// folder's name carries the process id of its run).
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const PREFIX = 'switchboard-test-run-';

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

export function setup() {
  const base = tmpdir();
  // Left by a run that was killed outright.
  for (const name of readdirSync(base)) {
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) rmSync(path.join(base, name), { recursive: true, force: true });
  }
  const root = mkdtempSync(path.join(base, `${PREFIX}${process.pid}-`));
  // Traversable by others: the PostgreSQL tests run their server as the postgres user inside it.
  chmodSync(root, 0o755);
  process.env.SWITCHBOARD_TEST_TMP_ROOT = root;
  process.env.TMPDIR = root;
  const remove = () => rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  process.once('exit', remove);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      remove();
      process.exit(130);
    });
  }
}

export function teardown() {
  const root = process.env.SWITCHBOARD_TEST_TMP_ROOT;
  if (root) rmSync(root, { recursive: true, force: true, maxRetries: 3 });
}
