/**
 * The request body parser: JSON only (application/json or application/merge-patch+json), at
 * most 1 MiB. Failures are answered here as problem+json, since they happen before routing:
 * 413 for a body over the limit, 400 naming the position of malformed JSON, 415 for another
 * media type.
 */
import { raw, type NextFunction, type Request, type Response } from 'express';
import { jsonErrorPosition } from './json-error-position';
import { problemOf, sendProblem } from './problem';

export const MAX_BODY_BYTES = 1024 * 1024;

export function jsonBody(): (req: Request, res: Response, next: NextFunction) => void {
  const read = raw({ limit: MAX_BODY_BYTES, type: ['application/json', 'application/*+json'] });
  return (req, res, next) => {
    const hasBody = req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
    if (hasBody && ['POST', 'PUT', 'PATCH'].includes(req.method) && !/^application\/([a-z.+-]+\+)?json\b/i.test(req.headers['content-type'] ?? '')) {
      return sendProblem(res, req, problemOf(415, `send the body as application/json (got ${req.headers['content-type'] ?? 'no content-type'})`));
    }
    read(req, res, (err?: { type?: string; message?: string; status?: number }) => {
      if (err?.type === 'entity.too.large') return sendProblem(res, req, problemOf(413, `the body is larger than ${MAX_BODY_BYTES} bytes (1 MiB)`));
      if (err) return sendProblem(res, req, problemOf(err.status ?? 400, err.message ?? 'unreadable body'));
      if (!Buffer.isBuffer(req.body)) {
        req.body = undefined;
        return next();
      }
      const text = req.body.toString('utf8');
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
