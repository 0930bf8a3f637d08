// `npm start`, `npm test` and `npm run demo` build first, but only when something they build
// from changed since the last build: with nothing changed they start at once (a full build took
// 15-25 s of every start). "Changed" is any file under the sources, the schemas, the protos or
// the build's own configuration newer than the stamp the last successful build left in dist/.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

const STAMP = 'dist/.build-stamp';
const INPUTS = ['apps', 'libs', 'test/fixtures', 'test/support', 'bench', 'prisma', 'proto', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json'];
const SKIP = new Set(['node_modules', 'generated', 'dist', 'results']);

/** What a build reads: sources, schemas, protos, migrations, the page's files, configuration (not docs or results). */
const BUILT_FROM = /\.(ts|mts|mjs|js|json|prisma|proto|sql|html|css|toml)$/;

function newest(p) {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return BUILT_FROM.test(p) ? st.mtimeMs : 0;
  let max = 0;
  for (const e of readdirSync(p, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue;
    max = Math.max(max, newest(path.join(p, e.name)));
  }
  return max;
}

const built = existsSync(STAMP) ? statSync(STAMP).mtimeMs : 0;
const changed = Math.max(...INPUTS.map(newest));
if (built > 0 && changed <= built && existsSync('dist/apps/cli/src/main.js')) {
  process.stdout.write('switchboard: the build is up to date\n');
  process.exit(0);
}
const started = Date.now();
const result = spawnSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);
// Dated when the build started: a file saved while it ran counts as changed next time.
writeFileSync(STAMP, `${new Date(started).toISOString()}\n`);
utimesSync(STAMP, new Date(started), new Date(started));
