/**
 * API token scopes. `read` reads everything under /v1; `write` also changes configuration;
 * `admin` also manages tokens; `node` is for balancers on the control plane only.
 */
import { SetMetadata } from '@nestjs/common';
import type { Request } from 'express';

export const SCOPES = ['read', 'write', 'admin', 'node'] as const;
export type Scope = (typeof SCOPES)[number];

/** What each scope grants, beyond itself. */
const IMPLIES: Record<Scope, readonly Scope[]> = { admin: ['admin', 'write', 'read', 'node'], write: ['write', 'read'], read: ['read'], node: ['node'] };

export function grants(held: readonly Scope[], needed: Scope): boolean {
  return held.some((s) => IMPLIES[s].includes(needed));
}

export interface Principal {
  tokenId: string;
  name: string;
  scopes: Scope[];
}

export type AuthenticatedRequest = Request & { principal?: Principal };

export const REQUIRED_SCOPE = 'switchboard:scope';
/** The scope a route needs; routes without it (and outside /v1) are open. */
export const RequireScope = (scope: Scope) => SetMetadata(REQUIRED_SCOPE, scope);

/** The secret of an `Authorization: Bearer <token>` value (HTTP header or gRPC metadata), or undefined. */
export function bearerToken(value: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(value ?? '')?.[1];
}
