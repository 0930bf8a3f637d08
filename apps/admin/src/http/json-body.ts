/**
 * The request body parser: JSON (application/json, application/merge-patch+json) or YAML
 * (application/yaml, text/yaml: the declarative config's own format), at most 1 MiB. Failures
 * are answered here as problem+json, since they happen before routing: 413 for a body over the
 * limit, 400 naming the position of malformed JSON or the line of malformed YAML, 415 for
 * another media type.
 */
import { raw, type NextFunction, type Request, type Response } from 'express';
import { LineCounter, parseDocument } from 'yaml';
import { jsonErrorPosition } from './json-error-position';
import { problemOf, sendProblem } from './problem';

export const MAX_BODY_BYTES = 1024 * 1024;

export function jsonBody(): (req: Request, res: Response, next: NextFunction) => void {
  const read = raw({ limit: MAX_BODY_BYTES, type: ['application/json', 'application/*+json', 'application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml'] });
  return (req, res, next) => {
    const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
    const type = req.headers['content-type'] ?? '';
    const yaml = /^(application|text)\/(x-)?yaml\b/i.test(type);
    if (hasBody && ['POST', 'PUT', 'PATCH'].includes(req.method) && !yaml && !/^application\/([a-z.+-]+\+)?json\b/i.test(type)) {
      return sendProblem(res, req, problemOf(415, `send the body as application/json or application/yaml (got ${type || 'no content-type'})`));
    }
    read(req, res, (err?: { type?: string; message?: string; status?: number }) => {
      if (err?.type === 'entity.too.large') return sendProblem(res, req, problemOf(413, `the body is larger than ${MAX_BODY_BYTES} bytes (1 MiB)`));
      if (err) return sendProblem(res, req, problemOf(err.status ?? 400, err.message ?? 'unreadable body'));
      if (!Buffer.isBuffer(req.body)) {
        req.body = undefined;
        return next();
      }
      const text = req.body.toString('utf8');
      if (yaml) {
        const lineCounter = new LineCounter();
        const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, lineCounter });
        const first = doc.errors[0];
        if (first) {
          const { line, col: column } = lineCounter.linePos(first.pos[0]);
          return sendProblem(res, req, { ...problemOf(400, `malformed YAML at line ${line}, column ${column}: ${first.message.split('\n')[0]}`, 'malformed-yaml'), line, column });
        }
        req.body = doc.toJS() ?? undefined;
        return next();
      }
      try {
        req.body = text.trim() === '' ? undefined : JSON.parse(text);
      } catch (e) {
        const at = jsonErrorPosition(text);
        return sendProblem(res, req, {
          ...problemOf(400, `malformed JSON at line ${at.line}, column ${at.column} (position ${at.offset}): ${(e as Error).message}`, 'malformed-json'),
          position: at.offset,
          line: at.line,
          column: at.column,
        });
      }
      next();
    });
  };
}
