/** Validates a request body or query with a zod schema; failures become a 400 naming each field. */
import type { z } from 'zod';
import { formatPath } from '#config';
import { ValidationProblem, type FieldError } from './problem';

export function zodErrors(error: z.ZodError): FieldError[] {
  return error.issues.map((issue) => {
    const path = issue.code === 'unrecognized_keys' && issue.keys.length === 1 ? [...issue.path, issue.keys[0]!] : issue.path;
    return { path: formatPath(path), message: issue.code === 'unrecognized_keys' ? `unknown field${issue.keys.length > 1 ? `s ${issue.keys.join(', ')}` : ''}` : issue.message };
  });
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown, title?: string): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (!result.success) throw new ValidationProblem(zodErrors(result.error), title);
  return result.data;
}

/** Whole-config error paths that point into `prefix` (`pools[2]`), shown relative to that resource. */
export function relativeTo(prefix: string): (e: { path: string }) => string {
  return (e) => (e.path === prefix ? '' : e.path.startsWith(`${prefix}.`) ? e.path.slice(prefix.length + 1) : e.path.startsWith(`${prefix}[`) ? e.path.slice(prefix.length) : e.path);
}

/**
 * A PUT/PATCH body for the resource whose key is in the URL: the key may be left out of the
 * body (it is filled in) but may not differ from the URL's.
 */
export function bodyWithKey(body: unknown, key: string, value: string): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ValidationProblem([{ path: '', message: 'the body must be a JSON object' }]);
  const given = (body as Record<string, unknown>)[key];
  if (given !== undefined && given !== value) throw new ValidationProblem([{ path: key, message: `must equal the ${key} in the URL ("${value}") or be left out` }]);
  return { ...(body as Record<string, unknown>), [key]: value };
}
