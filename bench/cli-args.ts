/** `--name N` from a bench script's command line, as a number, or `fallback` when absent. */
export function numberArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** A build to measure: `LABEL=ROOT[:NODE_OPTIONS]` (ROOT: a checkout with a built dist/, or `naive` where a script knows it). */
export interface Target {
  label: string;
  root: string;
  nodeOptions?: string;
}

/** Every `LABEL=ROOT[:NODE_OPTIONS]` on the command line that is not the value of one of `valueFlags`. */
export function targetArgs(valueFlags: readonly string[] = []): Target[] {
  const argv = process.argv.slice(2);
  return argv
    .filter((a, i) => a.includes('=') && !a.startsWith('--') && !valueFlags.includes(argv[i - 1] ?? ''))
    .map((a) => {
      const label = a.slice(0, a.indexOf('='));
      const spec = a.slice(a.indexOf('=') + 1);
      const colon = spec.indexOf(':');
      return colon < 0 ? { label, root: spec } : { label, root: spec.slice(0, colon), nodeOptions: spec.slice(colon + 1) };
    });
}
