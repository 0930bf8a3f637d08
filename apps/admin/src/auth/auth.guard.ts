/**
 * Bearer-token authentication for everything under /v1: no or unknown token is 401 (with
 * WWW-Authenticate), a token without the route's scope is 403. Routes outside /v1 (/healthz,
 * /readyz, /metrics, /openapi.json, /docs) carry no scope and are open.
 */
import { HttpStatus, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Response } from 'express';
import { ProblemException } from '../http/problem';
import { REQUIRED_SCOPE, grants, type AuthenticatedRequest, type Scope } from './scopes';
import { TokensService } from './tokens.service';

@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: TokensService,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const needed = this.reflector.getAllAndOverride<Scope | undefined>(REQUIRED_SCOPE, [context.getHandler(), context.getClass()]);
    if (needed === undefined) return true;
    const req = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    // authenticateFirst has already authenticated everything under /v1.
    const principal = req.principal ?? (m ? this.tokens.authenticate(m[1]!) : undefined);
    if (!principal) {
      context.switchToHttp().getResponse<Response>().setHeader('WWW-Authenticate', 'Bearer realm="switchboard"');
      throw new ProblemException(HttpStatus.UNAUTHORIZED, 'unauthenticated', 'Unauthorized', m ? 'the bearer token is not valid' : 'send a token: Authorization: Bearer <token>');
    }
    if (!grants(principal.scopes, needed)) {
      throw new ProblemException(HttpStatus.FORBIDDEN, 'forbidden', 'Forbidden', `this needs the "${needed}" scope; token "${principal.name}" has ${principal.scopes.join(', ')}`);
    }
    req.principal = principal;
    return true;
  }
}
