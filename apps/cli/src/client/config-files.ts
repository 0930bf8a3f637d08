/**
 * The files a user applies: `-f FILE` (repeatable) or `-f DIR/` (every .yaml, .yml and .json in
 * it, sorted), YAML or JSON, with `${VAR}` / `${VAR:-default}` taken from the environment. Each
 * file is checked on its own (syntax, fields) and then all of them together (duplicates, unknown
 * health policies, routes taken twice), and every error names its file, line and field, before
 * anything is sent to the server.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { configSchema, configShapeSchema, formatPath, parseConfigDocument, type ConfigError, type SwitchboardConfig } from '#config';

export type LoadResult = { ok: true; config: SwitchboardConfig; files: string[] } | { ok: false; errors: string[] };

export function expandPaths(inputs: readonly string[]): string[] {
  const files: string[] = [];
  for (const input of inputs) {
    if (statSync(input, { throwIfNoEntry: false })?.isDirectory()) {
      files.push(...readdirSync(input).filter((f) => /\.(ya?ml|json)$/i.test(f)).sort().map((f) => path.join(input, f)));
    } else {
      files.push(input);
    }
  }
  return files;
}

/**
 * Replaces ${VAR} and ${VAR:-default} in a string value (not in comments or keys); `$${`
 * escapes a literal `${`. An unset variable without a default is an error on the value's line.
 */
export function interpolate(env: NodeJS.ProcessEnv): (value: string, line: number, errors: ConfigError[]) => string {
  return (value, line, errors) =>
    value.replace(/\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (match, name: string, fallback: string | undefined) => {
      if (match.startsWith('$$')) return match.slice(1);
      const resolved = env[name] ?? fallback;
      if (resolved === undefined) errors.push({ path: '', line, message: `\${${name}} is not set (give it a value or a default: \${${name}:-value})` });
      return resolved ?? '';
    });
}

export function loadConfigFiles(inputs: readonly string[], env: NodeJS.ProcessEnv = process.env): LoadResult {
  const files = expandPaths(inputs);
  if (files.length === 0) return { ok: false, errors: [`no .yaml, .yml or .json files in ${inputs.join(', ')}`] };
  const errors: string[] = [];
  const merged: SwitchboardConfig & { routes: NonNullable<SwitchboardConfig['routes']> } = { healthPolicies: [], pools: [], routes: [] };
  // Where each merged item came from, to put file:line on errors found across files.
  const origin: { healthPolicies: [string, number | undefined][]; pools: [string, (p: readonly PropertyKey[]) => number | undefined, number][]; routes: [string, (p: readonly PropertyKey[]) => number | undefined, number][] } = { healthPolicies: [], pools: [], routes: [] };
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      errors.push(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      continue;
    }
    const parsed = parseConfigDocument(text, configShapeSchema, interpolate(env));
    if (!parsed.ok) {
      for (const e of parsed.errors) errors.push(`${file}${e.line !== undefined ? `:${e.line}` : ''}: ${e.path ? `${e.path}: ` : ''}${e.message}`);
      continue;
    }
    parsed.value.healthPolicies.forEach((p, i) => {
      merged.healthPolicies.push(p);
      origin.healthPolicies.push([file, parsed.lineOf(['healthPolicies', i])]);
    });
    parsed.value.pools.forEach((p, i) => {
      merged.pools.push(p);
      origin.pools.push([file, parsed.lineOf, i]);
    });
    (parsed.value.routes ?? []).forEach((r, i) => {
      merged.routes.push(r);
      origin.routes.push([file, parsed.lineOf, i]);
    });
  }
  if (errors.length > 0) return { ok: false, errors };
  const { routes, ...rest } = merged;
  const whole = configSchema.safeParse(routes.length > 0 ? merged : rest);
  if (!whole.success) {
    for (const issue of whole.error.issues) {
      const [kind, index, ...rest] = issue.path as [string, number, ...PropertyKey[]];
      let where = '';
      if ((kind === 'pools' || kind === 'routes') && origin[kind][index]) {
        const [file, lineOf, i] = origin[kind][index]!;
        const line = lineOf([kind, i, ...rest]);
        where = `${file}${line !== undefined ? `:${line}` : ''}: ${formatPath([kind, i, ...rest])}`;
      } else if (kind === 'healthPolicies' && origin.healthPolicies[index]) {
        const [file, line] = origin.healthPolicies[index]!;
        where = `${file}${line !== undefined ? `:${line}` : ''}: ${formatPath(issue.path)}`;
      } else {
        where = formatPath(issue.path);
      }
      errors.push(`${where}: ${issue.message}`);
    }
    return { ok: false, errors };
  }
  return { ok: true, config: whole.data, files };
}
