/**
 * The request body parser: JSON (application/json, application/merge-patch+json) or YAML
 * (application/yaml, text/yaml: the declarative config's own format), at most 1 MiB, or
 * MAX_CONFIG_BODY_BYTES for the whole-config endpoints (PUT /v1/config, POST /v1/config/plan),
 * so any config the admin holds (16 MiB of compact JSON) applies back as exported, pretty-printed
 * or in YAML. Failures
 * are answered here as problem+json, since they happen before routing: 413 for a body over the
 * limit, 400 naming the position of malformed JSON or the line of malformed YAML, 415 for
 * another media type.
 *
 * Bounded for hostile input, and it runs only after authentication (see authenticate.ts): at
 * most MAX_DEPTH levels of nesting in either format, no repeated keys in an object (JSON or
 * YAML), and at most MAX_YAML_ALIASES alias references in a YAML document (a ~1 KB "billion
 * laughs" document otherwise expands to gigabytes). Each is a 400 naming where it happened.
 */
import { raw, type NextFunction, type Request, type Response } from 'express';
import { LineCounter, parseDocument } from 'yaml';
import { jsonErrorPosition } from './json-error-position';
import { depthOf, lineColumnAt, scanJson } from './json-structure';
import { problemOf, sendProblem } from './problem';

export const MAX_BODY_BYTES = 1024 * 1024;
/** The whole-config endpoints: twice the config limit (an export in YAML or indented JSON is larger than its compact JSON). */
export const MAX_CONFIG_BODY_BYTES = 32 * 1024 * 1024;
const WHOLE_CONFIG = /^\/v1\/config(\/plan)?\/?$/;
/** Levels of objects and arrays in a body; a whole config needs 6. */
export const MAX_DEPTH = 32;
export const MAX_YAML_ALIASES = 100;

export function jsonBody(): (req: Request, res: Response, next: NextFunction) => void {
  const types = ['application/json', 'application/*+json', 'application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'];
  const readSmall = raw({ limit: MAX_BODY_BYTES, type: types });
  const readConfig = raw({ limit: MAX_CONFIG_BODY_BYTES, type: types });
  return (req, res, next) => {
    const whole = WHOLE_CONFIG.test(req.path);
    const read = whole ? readConfig : readSmall;
    const limit = whole ? MAX_CONFIG_BODY_BYTES : MAX_BODY_BYTES;
    const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
    const type = req.headers['content-type'] ?? '';
    const yaml = /^(application|text)\/(x-)?yaml\b/i.test(type);
    if (hasBody && ['POST', 'PUT', 'PATCH'].includes(req.method) && !yaml && !/^application\/([a-z.+-]+\+)?json\b/i.test(type)) {
      return sendProblem(res, req, problemOf(415, `send the body as application/json or application/yaml (got ${type || 'no content-type'})`));
    }
    read(req, res, (err?: { type?: string; message?: string; status?: number }) => {
      if (err?.type === 'entity.too.large') return sendProblem(res, req, problemOf(413, `the body is larger than ${limit} bytes (${limit / 1024 / 1024} MiB)`));
      if (err) return sendProblem(res, req, problemOf(err.status ?? 400, err.message ?? 'unreadable body'));
      if (!Buffer.isBuffer(req.body)) {
        req.body = undefined;
        return next();
      }
      const text = req.body.toString('utf8');
      if (yaml) {
        const lineCounter = new LineCounter();
        let value: unknown;
        try {
          const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, lineCounter });
          const first = doc.errors[0];
          if (first) {
            const { line, col: column } = lineCounter.linePos(first.pos[0]);
            return sendProblem(res, req, { ...problemOf(400, `malformed YAML at line ${line}, column ${column}: ${first.message.split('\n')[0]}`, 'malformed-yaml'), line, column });
          }
          value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
        } catch (e) {
          // The yaml library throws for alias bombs (ReferenceError) and a RangeError for nesting past the stack.
          const detail = e instanceof RangeError ? `the YAML document nests more than ${MAX_DEPTH} levels deep` : `the YAML document is refused: ${(e as Error).message.split('\n')[0]} (at most ${MAX_YAML_ALIASES} alias references)`;
          return sendProblem(res, req, problemOf(400, detail, 'malformed-yaml'));
        }
        if (depthOf(value, MAX_DEPTH) > MAX_DEPTH) return sendProblem(res, req, problemOf(400, `the YAML document nests more than ${MAX_DEPTH} levels deep`, 'too-deep'));
        req.body = value ?? undefined;
        return next();
      }
      if (text.trim() === '') {
        req.body = undefined;
        return next();
      }
      const finding = scanJson(text, MAX_DEPTH);
      if (finding?.kind === 'too-deep') {
        const at = lineColumnAt(text, finding.offset);
        return sendProblem(res, req, { ...problemOf(400, `the JSON body nests more than ${MAX_DEPTH} levels deep (line ${at.line}, column ${at.column})`, 'too-deep'), position: finding.offset });
      }
      try {
        req.body = JSON.parse(text);
      } catch (e) {
        let at: { offset: number; line: number; column: number };
        try {
          at = jsonErrorPosition(text);
        } catch {
          at = { offset: 0, line: 1, column: 1 }; // the position finder gave up (a hostile shape): the message still says what is wrong
        }
        return sendProblem(res, req, {
          ...problemOf(400, `malformed JSON at line ${at.line}, column ${at.column} (position ${at.offset}): ${(e as Error).message}`, 'malformed-json'),
          position: at.offset,
          line: at.line,
          column: at.column,
        });
      }
      if (finding?.kind === 'duplicate-key') {
        const at = lineColumnAt(text, finding.offset);
        const field = finding.path;
        return sendProblem(res, req, {
          ...problemOf(400, `duplicate key "${finding.key}" at line ${at.line}, column ${at.column}${field ? ` (${field})` : ''}`, 'duplicate-key'),
          position: finding.offset,
          errors: [{ path: field, message: `"${finding.key}" appears more than once` }],
        });
      }
      next();
    });
  };
}
