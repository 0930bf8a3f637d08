/**
 * Builds the dashboard served at /ui: bundles apps/admin/ui/src/main.ts (the typed API client
 * and uPlot included, nothing fetched from elsewhere) with esbuild into dist/ui/app.js, and
 * copies the page, its stylesheet and uPlot's.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const ui = path.join(root, 'apps/admin/ui');
const out = path.join(root, 'dist/ui');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [path.join(ui, 'src/main.ts')],
  outfile: path.join(out, 'app.js'),
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'iife',
  target: ['es2022'],
  platform: 'browser',
  legalComments: 'linked',
  logLevel: 'warning',
  conditions: ['source'], // package.json "imports": the TypeScript sources of the libs
});
copyFileSync(path.join(ui, 'index.html'), path.join(out, 'index.html'));
copyFileSync(path.join(ui, 'styles.css'), path.join(out, 'styles.css'));
copyFileSync(path.join(root, 'node_modules/uplot/dist/uPlot.min.css'), path.join(out, 'uPlot.min.css'));
