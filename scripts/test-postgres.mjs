/**
 * `npm run test:postgres`: the admin's end-to-end suites again, with every admin on its own new
 * database of a throwaway PostgreSQL server (Debian's postgresql, started here on 127.0.0.1 and
 * removed afterwards). Needs `npm run build` first (npm test does it).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const { startPostgres } = await import(path.join(root, 'dist/test/support/postgres.js'));
const SUITES = ['test/e2e/admin-api', 'test/e2e/admin-config', 'test/e2e/admin-openapi', 'test/e2e/hostile-rest', 'test/e2e/cli', 'test/e2e/dashboard', 'test/e2e/routes'];
const pg = await startPostgres();
process.stdout.write(`PostgreSQL at ${pg.url}: ${SUITES.join(' ')}\n`);
let status = 1;
try {
  const r = spawnSync(process.execPath, ['--experimental-vm-modules', path.join(root, 'node_modules/jest/bin/jest.js'), '--runInBand', ...SUITES, ...process.argv.slice(2)], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, SWITCHBOARD_TEST_POSTGRES: pg.url },
  });
  status = r.status ?? 1;
} finally {
  pg.stop();
}
process.exit(status);
