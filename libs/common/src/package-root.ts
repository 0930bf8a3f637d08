import * as path from 'node:path';

/**
 * The repository (package) root, where proto/ and prisma/ live: compiled code runs from
 * dist/<same path>, so it is a fixed number of folders above the compiled file; code run from
 * source by Jest (native ESM, no __dirname) runs with the root as its working directory.
 */
export function packageRoot(compiledDirname: string | undefined, depth: number): string {
  return typeof compiledDirname === 'string' ? path.resolve(compiledDirname, ...Array<string>(depth).fill('..')) : process.cwd();
}
