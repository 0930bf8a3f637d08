/**
 * Authorisation for everything under /v1: a token without the route's scope is 403. The token
 * itself was checked by authenticateFirst before the body was read (401 there); routes outside
 * /v1 (/healthz, /readyz, /metrics, /openapi.json, /docs) carry no scope and are open.
 */
import { HttpStatus, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Response } from 'express';
import { ProblemException } from '../http/problem';
import { REQUIRED_SCOPE, grants, type AuthenticatedRequest, type Scope } from './scopes';

@Injectable()
export class AuthGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const needed = this.reflector.getAllAndOverride<Scope | undefined>(REQUIRED_SCOPE, [context.getHandler(), context.getClass()]);
    if (needed === undefined) return true;
    const principal = context.switchToHttp().getRequest<AuthenticatedRequest>().principal;
    if (!principal) {
      // A scoped route outside /v1, which authenticateFirst does not cover: none exists, and none may pass.
      context.switchToHttp().getResponse<Response>().setHeader('WWW-Authenticate', 'Bearer realm="switchboard"');
      throw new ProblemException(HttpStatus.UNAUTHORIZED, 'unauthenticated', 'Unauthorized', 'send a token: Authorization: Bearer <token>');
    }
    if (!grants(principal.scopes, needed)) {
      throw new ProblemException(HttpStatus.FORBIDDEN, 'forbidden', 'Forbidden', `this needs the "${needed}" scope; token "${principal.name}" has ${principal.scopes.join(', ')}`);
    }
    return true;
  }
}
