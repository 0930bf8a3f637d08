/** Pieces the configuration's schemas share: resource names, descriptions with examples (for OpenAPI), labels. */
import { z } from 'zod';

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const name = z.string().regex(NAME, 'must be 1-63 characters of a-z, 0-9 and "-", starting and ending with a letter or digit');
export const described = <T extends z.ZodType>(schema: T, description: string, example: unknown): T => schema.meta({ description, example });
export const labels = described(z.record(z.string().min(1).max(63), z.string().max(253)), 'Free-form key/value labels; `switchboard --select-tag team=payments` limits plan/apply/export to resources carrying one.', { team: 'payments' }).optional();
