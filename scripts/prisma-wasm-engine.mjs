// Prisma's schema engine in WebAssembly (@prisma/schema-engine-wasm), loaded and started: what
// the migration scripts use instead of the CLI's native engine, a download these machines cannot make.
import { readFileSync } from 'node:fs';
import * as path from 'node:path';

export async function loadSchemaEngine(root) {
  const engineDir = path.join(root, 'node_modules/@prisma/schema-engine-wasm');
  const bg = await import(path.join(engineDir, 'schema_engine_bg.js'));
  const { instance } = await WebAssembly.instantiate(readFileSync(path.join(engineDir, 'schema_engine_bg.wasm')), { './schema_engine_bg.js': bg });
  bg.__wbg_set_wasm(instance.exports);
  instance.exports.__wbindgen_start?.();
  return bg;
}
