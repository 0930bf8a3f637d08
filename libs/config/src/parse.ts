/**
 * Turns configuration text (YAML, or JSON, which is YAML too) into a validated SwitchboardConfig,
 * or into a list of errors that each name the field (`pools[0].backends[1].weight`) and, when the
 * text is at hand, the line it stands on.
 */
import { isNode, LineCounter, parseDocument, visit } from 'yaml';
import type { ZodError, z } from 'zod';
import { configSchema, type SwitchboardConfig } from './schema';

export interface ConfigError {
  /** The field, as a JSON-path-like string: `pools[0].backends[1].address`; empty for the document itself. */
  path: string;
  message: string;
  /** 1-based line in the source text, when known. */
  line?: number;
}

export type ConfigResult = { ok: true; config: SwitchboardConfig } | { ok: false; errors: ConfigError[] };

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function fromZod(error: ZodError, lineOf: (path: readonly PropertyKey[]) => number | undefined): ConfigError[] {
  return error.issues.map((issue) => {
    // An unknown key is reported on its parent object; name the key itself.
    const path = issue.code === 'unrecognized_keys' && issue.keys.length === 1 ? [...issue.path, issue.keys[0]] : issue.path;
    const line = lineOf(path);
    return { path: formatPath(path), message: issue.message, ...(line !== undefined ? { line } : {}) };
  });
}

/** Validates an already parsed object (a REST body, a snapshot pushed by the admin). */
export function validateConfig(value: unknown): ConfigResult {
  const result = configSchema.safeParse(value);
  return result.success ? { ok: true, config: result.data } : { ok: false, errors: fromZod(result.error, () => undefined) };
}

/** Parses and validates configuration text; errors carry line numbers. */
export function parseConfigText(text: string): ConfigResult {
  const parsed = parseConfigDocument(text, configSchema);
  return parsed.ok ? { ok: true, config: parsed.value } : parsed;
}

export type DocumentResult<T> = { ok: true; value: T; lineOf: (path: readonly PropertyKey[]) => number | undefined } | { ok: false; errors: ConfigError[] };

/**
 * Parses YAML/JSON text and validates it with `schema` (the whole config, or the shape of one of
 * several files); on success also returns `lineOf`, for errors found later (across files).
 */
export function parseConfigDocument<S extends z.ZodType>(
  text: string,
  schema: S,
  /** Rewrites a string value before validation (e.g. environment interpolation); its errors carry the value's line. */
  transformString?: (value: string, line: number, errors: ConfigError[]) => string,
): DocumentResult<z.output<S>> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      errors: doc.errors.map((e) => ({ path: '', message: e.message.split('\n')[0] ?? e.message, line: lineCounter.linePos(e.pos[0]).line })),
    };
  }
  if (transformString) {
    const errors: ConfigError[] = [];
    visit(doc, {
      Scalar(_key, node) {
        if (typeof node.value === 'string' && node.range) node.value = transformString(node.value, lineCounter.linePos(node.range[0]).line, errors);
      },
    });
    if (errors.length > 0) return { ok: false, errors };
  }
  const lineOf = (path: readonly PropertyKey[]): number | undefined => {
    // Walk up to the closest node that exists in the text (a missing field is reported on its parent).
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  const result = schema.safeParse(doc.toJS() ?? {});
  if (result.success) return { ok: true, value: result.data as z.output<S>, lineOf };
  return { ok: false, errors: fromZod(result.error, lineOf) };
}

export function describeErrors(errors: readonly ConfigError[], source?: string): string {
  return errors
    .map((e) => `${source ?? 'config'}${e.line !== undefined ? `:${e.line}` : ''}: ${e.path || '(document)'}: ${e.message}`)
    .join('\n');
}
