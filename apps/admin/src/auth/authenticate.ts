/**
 * Authentication before anything else reads the request: an Express middleware that runs ahead
 * of the body parser, so a client without a valid token costs a header lookup and a hash, never
 * a parse of what it sent. Everything under /v1 needs `Authorization: Bearer <token>`; the
 * route's scope is checked later by AuthGuard, from the principal set here.
 *
 * Failed attempts are counted per client address in fixed one-minute windows. Past
 * `maxFailuresPerMinute`, further failures from that address get 429 with Retry-After instead
 * of 401, and failures are logged at most every 10 s per address with their count, so neither
 * guessing nor the log lines it causes are unbounded. A valid token is always let through:
 * tokens are 256-bit random secrets (guessing one is hopeless, so the limit is about cost), and
 * a client sharing an address with an attacker (NAT, loopback) keeps working.
 */
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { throttled } from '#common';
import { problemOf, sendProblem } from '../http/problem';
import { bearerToken, type AuthenticatedRequest, type Principal } from './scopes';

export interface AuthenticateOptions {
  /** A promise only when the token must be looked up (one created through another admin a moment ago). */
  authenticate(secret: string): Principal | undefined | Promise<Principal | undefined>;
  log: Logger;
  maxFailuresPerMinute: number;
  /** Told of each refused attempt (for metrics): 401 or 429. */
  refused?(status: 401 | 429): void;
}

/** Addresses tracked at once; past that the oldest window is forgotten (bounded memory under a spread-out attack). */
const MAX_TRACKED = 10_000;
const WINDOW_MS = 60_000;

export function authenticateFirst(options: AuthenticateOptions): (req: Request, res: Response, next: NextFunction) => void {
  const failures = new Map<string, { count: number; windowEnds: number; log: (reason: string) => void }>();
  return (req, res, next) => {
    if (!(req.path === '/v1' || req.path.startsWith('/v1/'))) return next();
    const header = req.headers.authorization ?? '';
    const secret = bearerToken(header);
    const found = secret !== undefined ? options.authenticate(secret) : undefined;
    if (found instanceof Promise) {
      found.then(
        (principal) => decide(req, res, next, secret, principal),
        (err: Error) => {
          res.setHeader('Retry-After', '1');
          sendProblem(res, req, problemOf(503, `cannot check the token now: ${err.message}`, 'unavailable'));
        },
      );
      return;
    }
    decide(req, res, next, secret, found);
  };

  function decide(req: Request, res: Response, next: NextFunction, secret: string | undefined, principal: Principal | undefined): void {
    const header = req.headers.authorization ?? '';
    if (principal) {
      (req as AuthenticatedRequest).principal = principal;
      return next();
    }
    const ip = req.socket.remoteAddress ?? 'unknown';
    const now = Date.now();
    let entry = failures.get(ip);
    if (entry === undefined || entry.windowEnds <= now) {
      failures.delete(ip);
      if (failures.size >= MAX_TRACKED) failures.delete(failures.keys().next().value!);
      entry = {
        count: 0,
        windowEnds: now + WINDOW_MS,
        log: entry?.log ?? throttled<string>(10_000, (reason, occurrences) => options.log.warn({ ip, reason, occurrences }, 'authentication failed')),
      };
      failures.set(ip, entry);
    }
    entry.count++;
    const reason = secret !== undefined ? 'unknown token' : header ? 'malformed Authorization header' : 'no token';
    entry.log(reason);
    if (entry.count > options.maxFailuresPerMinute) {
      options.refused?.(429);
      const retryAfter = Math.max(1, Math.ceil((entry.windowEnds - now) / 1000));
      res.setHeader('Retry-After', String(retryAfter));
      return sendProblem(res, req, problemOf(429, `too many failed authentications from ${ip}: ${entry.count} this minute; retry in ${retryAfter} s`, 'too-many-failures'));
    }
    options.refused?.(401);
    res.setHeader('WWW-Authenticate', 'Bearer realm="switchboard"');
    return sendProblem(res, req, problemOf(401, secret !== undefined ? 'the bearer token is not valid' : 'send a token: Authorization: Bearer <token>', 'unauthenticated'));
  }
}
