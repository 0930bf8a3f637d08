/** Terminal output: the plan as + / ~ / - lines, aligned tables, colour only on a terminal. */
import type { Change, ConfigDiff } from '#config';

const useColour = (stream: NodeJS.WriteStream): boolean => Boolean(stream.isTTY) && !process.env.NO_COLOR && process.env.TERM !== 'dumb';

export function colours(stream: NodeJS.WriteStream = process.stdout) {
  const on = useColour(stream);
  const wrap = (code: number) => (s: string) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { green: wrap(32), yellow: wrap(33), red: wrap(31), dim: wrap(2), bold: wrap(1) };
}

const KIND: Record<Change['kind'], string> = { healthPolicy: 'health policy', pool: 'pool', backend: 'backend', route: 'route' };
const show = (v: unknown): string => (v === null || v === undefined ? '(none)' : typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v));

export function renderPlan(diff: ConfigDiff, stream: NodeJS.WriteStream = process.stdout): string {
  const c = colours(stream);
  if (diff.changes.length === 0) return 'No changes. The configuration matches the files.';
  const lines: string[] = [];
  for (const ch of diff.changes) {
    const what = `${KIND[ch.kind]} ${ch.name}${ch.pool ? ` (pool ${ch.pool})` : ''}`;
    if (ch.action === 'create') {
      lines.push(c.green(`+ create ${what}`));
      for (const f of ch.fields) lines.push(c.green(`    ${f.path}: ${show(f.after)}`));
    } else if (ch.action === 'delete') {
      lines.push(c.red(`- delete ${what}`));
    } else {
      lines.push(c.yellow(`~ update ${what}`));
      for (const f of ch.fields) lines.push(`    ${f.path}: ${c.red(show(f.before))} → ${c.green(show(f.after))}`);
    }
  }
  const count = (a: Change['action']) => diff.changes.filter((ch) => ch.action === a).length;
  lines.push('', c.bold(`Plan: ${count('create')} to create, ${count('update')} to update, ${count('delete')} to delete.`));
  return lines.join('\n');
}

export function renderTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  return cells.map((r) => r.map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}
