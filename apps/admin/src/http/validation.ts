/** Validates a request body or query with a zod schema; failures become a 400 naming each field. */
import type { z } from 'zod';
import { formatPath } from '../../../../libs/config/src';
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
