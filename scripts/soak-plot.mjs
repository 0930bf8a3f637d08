// Redraws the SVG plot of a soak's results JSON (bench/soak-plot.ts, built): node scripts/soak-plot.mjs bench/results/soak-X.json
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { soakSvg } = require('../dist/bench/soak-plot.js');
for (const file of process.argv.slice(2)) {
  writeFileSync(file.replace(/\.json$/, '.svg'), soakSvg(JSON.parse(readFileSync(file, 'utf8'))));
  process.stdout.write(`wrote ${file.replace(/\.json$/, '.svg')}\n`);
}
