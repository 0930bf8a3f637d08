/**
 * List endpoints page and filter: `?limit=` (1-500, default 100), `?cursor=` (the `nextCursor`
 * of the previous page), `?prefix=` (name prefix) and `?label=key=value` (repeatable: all must
 * match). Lists are ordered by their key, so a cursor is simply the last key seen.
 */
import { z } from 'zod';
import { ValidationProblem } from './problem';
import { parseWith } from './validation';

export const listQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z.string().optional(),
  prefix: z.string().optional(),
  label: z.union([z.string(), z.array(z.string())]).optional(),
});

export type ListQuery = z.output<typeof listQuerySchema>;

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export function parseListQuery(query: unknown): ListQuery {
  const parsed = parseWith(listQuerySchema, query, 'Invalid query');
  const bad = labelFilters(parsed).find((l) => !l.includes('='));
  if (bad !== undefined) throw new ValidationProblem([{ path: 'label', message: `must be key=value, got "${bad}"` }], 'Invalid query');
  return parsed;
}

function labelFilters(q: ListQuery): string[] {
  return q.label === undefined ? [] : Array.isArray(q.label) ? q.label : [q.label];
}

const encode = (key: string): string => Buffer.from(key).toString('base64url');
const decode = (cursor: string): string => Buffer.from(cursor, 'base64url').toString();

/** Pages `items` (already sorted by `key`) after filtering by prefix and labels. */
export function paginate<T extends { labels?: Record<string, string> | undefined }>(items: readonly T[], key: (t: T) => string, q: ListQuery): Page<T> {
  const labels = labelFilters(q).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const);
  const after = q.cursor !== undefined ? decode(q.cursor) : undefined;
  const matching = items.filter(
    (t) => (q.prefix === undefined || key(t).startsWith(q.prefix)) && (after === undefined || key(t) > after) && labels.every(([k, v]) => t.labels?.[k] === v),
  );
  const page = matching.slice(0, q.limit);
  return { items: page, nextCursor: matching.length > q.limit ? encode(key(page[page.length - 1]!)) : null };
}
