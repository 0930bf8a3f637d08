/**
 * Errors as RFC 9457 problem details (application/problem+json). Every error the API returns
 * goes through here: Nest's HTTP exceptions, validation failures with the offending field paths,
 * and the body parser's 400/413/415 (which happen before any controller runs).
 */
import { ArgumentsHost, Catch, HttpException, HttpStatus, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { DATABASE_RETRY_AFTER_S, isDatabaseUnavailable } from '../store/database-unavailable';

export interface FieldError {
  /** The field, e.g. `backends[0].weight`; empty for the body itself. */
  path: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: FieldError[];
}

const TYPE_BASE = 'https://switchboard.dev/problems/';

/** A problem with a specific type, e.g. `validation`, `precondition-failed`, `in-use`. */
export class ProblemException extends HttpException {
  constructor(status: number, slug: string, title: string, detail: string, extensions: Record<string, unknown> = {}) {
    super({ type: TYPE_BASE + slug, title, status, detail, ...extensions }, status);
  }
}

export class ValidationProblem extends ProblemException {
  constructor(errors: FieldError[], title = 'Invalid request body') {
    const first = errors[0];
    const detail = first ? `${first.path || '(body)'}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}` : title;
    super(HttpStatus.BAD_REQUEST, 'validation', title, detail, { errors });
  }
}

export const notFound = (what: string): ProblemException => new ProblemException(HttpStatus.NOT_FOUND, 'not-found', 'Not found', `${what} does not exist`);
export const conflict = (slug: string, detail: string, extensions: Record<string, unknown> = {}): ProblemException =>
  new ProblemException(HttpStatus.CONFLICT, slug, 'Conflict', detail, extensions);

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  409: 'Conflict',
  412: 'Precondition failed',
  413: 'Content too large',
  415: 'Unsupported media type',
  428: 'Precondition required',
  429: 'Too many requests',
  500: 'Internal server error',
  503: 'Service unavailable',
};

export function sendProblem(res: Response, req: Request, problem: Omit<Problem, 'instance'> & Record<string, unknown>): void {
  if (res.headersSent) return;
  // The URL as given, cut to 512 characters: a problem never echoes a 1 MB path back.
  const instance = req.originalUrl.length > 512 ? `${req.originalUrl.slice(0, 512)}...` : req.originalUrl;
  res.status(problem.status).type('application/problem+json').send(JSON.stringify({ ...problem, instance }));
}

export function problemOf(status: number, detail: string, slug?: string): Omit<Problem, 'instance'> {
  return { type: slug ? TYPE_BASE + slug : 'about:blank', title: TITLES[status] ?? 'Error', status, detail };
}

@Catch()
export class ProblemFilter implements ExceptionFilter {
  constructor(private readonly log: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<Request>();
    const res = http.getResponse<Response>();
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const body = exception.getResponse();
      if (typeof body === 'object' && body !== null && 'type' in body) {
        sendProblem(res, req, body as Problem & Record<string, unknown>);
      } else {
        const message = typeof body === 'string' ? body : ((body as { message?: unknown }).message ?? exception.message);
        sendProblem(res, req, problemOf(status, Array.isArray(message) ? message.join('; ') : String(message)));
      }
      return;
    }
    if (isDatabaseUnavailable(exception)) {
      this.log.warn({ err: (exception as Error).message, method: req.method, url: req.originalUrl }, 'the database is unavailable; answered 503');
      res.setHeader('Retry-After', String(DATABASE_RETRY_AFTER_S));
      sendProblem(res, req, problemOf(503, `the database is unavailable now; nothing was changed: retry in ${DATABASE_RETRY_AFTER_S} s`, 'database-unavailable'));
      return;
    }
    this.log.error({ err: exception, method: req.method, url: req.originalUrl }, 'unhandled error');
    sendProblem(res, req, problemOf(500, 'the server failed to handle the request; see its log'));
  }
}
