/**
 * Pools and their backends as REST resources over the one configuration. Every write is a
 * function of the current config handed to ConfigService.commit, so existence and If-Match are
 * checked under the write lock. Natural keys: a pool's name, a backend's address within its pool.
 */
import { Injectable } from '@nestjs/common';
import { backendSchema, canonicalPool, entityTag, poolSchema, routesUsing, type BackendConfig, type PoolConfig, type SwitchboardConfig } from '#config';
import { ConfigService, type CommitResult } from '../config/config.service';
import { paginate, type ListQuery, type Page } from '../http/list-query';
import { mergePatch } from '../http/merge-patch';
import { checkIfMatch } from '../http/preconditions';
import { conflict, notFound, ValidationProblem } from '../http/problem';
import { bodyWithKey, parseWith, relativeTo } from '../http/validation';

export interface Written<T> {
  resource: T;
  etag: string;
  revision: number;
  created: boolean;
}

export const poolEtag = (p: PoolConfig): string => entityTag(canonicalPool(p));
export const backendEtag = (b: BackendConfig): string => entityTag(b);

@Injectable()
export class PoolsService {
  constructor(private readonly config: ConfigService) {}

  list(q: ListQuery): Page<PoolConfig> {
    return paginate(this.config.current().config.pools, (p) => p.name, q);
  }

  get(name: string): { pool: PoolConfig; etag: string } {
    const pool = this.find(this.config.current().config, name);
    if (!pool) throw notFound(`pool "${name}"`);
    return { pool, etag: poolEtag(pool) };
  }

  /** POST: creates a pool; 409 if the name is taken. */
  create(body: unknown, author: string): Promise<Written<PoolConfig>> {
    const pool = parseWith(poolSchema, body);
    return this.writePool(pool.name, author, (cfg) => {
      if (this.find(cfg, pool.name)) throw conflict('exists', `pool "${pool.name}" already exists; PUT /v1/pools/${pool.name} replaces it`);
      return pool;
    });
  }

  /** PUT: creates or replaces. Without `backends` in the body the pool keeps its backends (they are a sub-resource). */
  put(name: string, body: unknown, ifMatch: string | undefined, author: string): Promise<Written<PoolConfig>> {
    const raw = bodyWithKey(body, 'name', name);
    const pool = parseWith(poolSchema, raw);
    return this.writePool(name, author, (cfg) => {
      const existing = this.find(cfg, name);
      checkIfMatch(ifMatch, existing && poolEtag(existing), `pool "${name}"`);
      return 'backends' in raw ? pool : { ...pool, backends: existing?.backends ?? [] };
    });
  }

  /** PATCH: a JSON merge patch of the pool. */
  patch(name: string, body: unknown, ifMatch: string | undefined, author: string): Promise<Written<PoolConfig>> {
    bodyWithKey(body, 'name', name);
    return this.writePool(name, author, (cfg) => {
      const existing = this.find(cfg, name);
      if (!existing) throw notFound(`pool "${name}"`);
      checkIfMatch(ifMatch, poolEtag(existing), `pool "${name}"`);
      return parseWith(poolSchema, mergePatch(existing, body));
    });
  }

  delete(name: string, ifMatch: string | undefined, author: string): Promise<CommitResult> {
    return this.config.commit(
      ({ config }) => {
        const existing = this.find(config, name);
        if (!existing) throw notFound(`pool "${name}"`);
        checkIfMatch(ifMatch, poolEtag(existing), `pool "${name}"`);
        const users = routesUsing(config, name);
        if (users.length > 0) throw conflict('in-use', `pool "${name}" is used by route${users.length > 1 ? 's' : ''} ${users.join(', ')}`, { routes: users });
        return { ...config, pools: config.pools.filter((p) => p.name !== name) };
      },
      { author, message: `delete pool ${name}` },
    );
  }

  listBackends(poolName: string, q: ListQuery): Page<BackendConfig> {
    return paginate(this.get(poolName).pool.backends, (b) => b.address, q);
  }

  getBackend(poolName: string, address: string): { backend: BackendConfig; etag: string } {
    const backend = this.get(poolName).pool.backends.find((b) => b.address === address);
    if (!backend) throw notFound(`backend ${address} in pool "${poolName}"`);
    return { backend, etag: backendEtag(backend) };
  }

  createBackend(poolName: string, body: unknown, author: string): Promise<Written<BackendConfig>> {
    const backend = parseWith(backendSchema, body);
    return this.writeBackend(poolName, backend.address, author, (existing) => {
      if (existing) throw conflict('exists', `backend ${backend.address} already exists in pool "${poolName}"`);
      return backend;
    });
  }

  putBackend(poolName: string, address: string, body: unknown, ifMatch: string | undefined, author: string): Promise<Written<BackendConfig>> {
    const backend = parseWith(backendSchema, bodyWithKey(body, 'address', address));
    return this.writeBackend(poolName, address, author, (existing) => {
      checkIfMatch(ifMatch, existing && backendEtag(existing), `backend ${address}`);
      return backend;
    });
  }

  patchBackend(poolName: string, address: string, body: unknown, ifMatch: string | undefined, author: string): Promise<Written<BackendConfig>> {
    const patch = bodyWithKey(body, 'address', address);
    const pool = this.find(this.config.current().config, poolName);
    if (pool?.discovery !== undefined && !pool.backends.some((b) => b.address === address)) return this.drainDiscovered(pool, address, patch, ifMatch, author);
    return this.writeBackend(poolName, address, author, (existing) => {
      if (!existing) throw notFound(`backend ${address} in pool "${poolName}"`);
      checkIfMatch(ifMatch, backendEtag(existing), `backend ${address}`);
      return parseWith(backendSchema, mergePatch(existing, body));
    });
  }

  /**
   * A backend the pool's DNS discovery finds is not a resource of the config; what can be set on
   * it is `drain`, kept in the pool's `drainAddresses`. The answer shows it as a backend (weight 1:
   * a discovered weight comes from its SRV record, on each balancer).
   */
  private async drainDiscovered(pool: PoolConfig, address: string, patch: Record<string, unknown>, ifMatch: string | undefined, author: string): Promise<Written<BackendConfig>> {
    const extra = Object.keys(patch).filter((k) => k !== 'address' && k !== 'drain');
    if (extra.length > 0) throw new ValidationProblem(extra.map((k) => ({ path: k, message: `a backend found by DNS discovery (pool "${pool.name}") can only be drained: only "drain" may be patched` })));
    const { address: valid } = parseWith(backendSchema, { address });
    if (typeof patch.drain !== 'boolean') throw new ValidationProblem([{ path: 'drain', message: 'must be true or false' }]);
    const drain = patch.drain;
    const asBackend = (drained: boolean): BackendConfig => ({ address: valid, weight: 1, drain: drained });
    const result = await this.config.commit(
      ({ config }) => {
        const current = this.find(config, pool.name);
        if (!current) throw notFound(`pool "${pool.name}"`);
        const listed = current.drainAddresses ?? [];
        checkIfMatch(ifMatch, backendEtag(asBackend(listed.includes(valid))), `backend ${valid}`);
        const next = drain ? (listed.includes(valid) ? listed : [...listed, valid]) : listed.filter((a) => a !== valid);
        const { drainAddresses: _, ...rest } = current;
        return replacePool(config, parseWith(poolSchema, next.length > 0 ? { ...rest, drainAddresses: next } : rest));
      },
      { author, message: `${drain ? 'drain' : 'undrain'} discovered backend ${valid} in pool ${pool.name}`, errorPath: (e) => e.path },
    );
    const resource = asBackend((this.find(result.state.config, pool.name)?.drainAddresses ?? []).includes(valid));
    return { resource, etag: backendEtag(resource), revision: result.state.revision, created: false };
  }

  deleteBackend(poolName: string, address: string, ifMatch: string | undefined, author: string): Promise<CommitResult> {
    return this.config.commit(
      ({ config }) => {
        const pool = this.find(config, poolName);
        if (!pool) throw notFound(`pool "${poolName}"`);
        const existing = pool.backends.find((b) => b.address === address);
        if (!existing) throw notFound(`backend ${address} in pool "${poolName}"`);
        checkIfMatch(ifMatch, backendEtag(existing), `backend ${address}`);
        return replacePool(config, { ...pool, backends: pool.backends.filter((b) => b.address !== address) });
      },
      { author, message: `delete backend ${address} from pool ${poolName}` },
    );
  }

  private find(cfg: SwitchboardConfig, name: string): PoolConfig | undefined {
    return cfg.pools.find((p) => p.name === name);
  }

  private async writePool(name: string, author: string, next: (cfg: SwitchboardConfig) => PoolConfig): Promise<Written<PoolConfig>> {
    let created = false;
    let index = 0;
    const result = await this.config.commit(
      ({ config }) => {
        const pool = next(config);
        created = !this.find(config, name);
        const out = replacePool(config, pool);
        index = out.pools.findIndex((p) => p.name === name);
        return out;
      },
      { author, message: () => `${created ? 'create' : 'update'} pool ${name}`, errorPath: (e) => relativeTo(`pools[${index}]`)(e) },
    );
    const pool = this.find(result.state.config, name)!;
    return { resource: pool, etag: poolEtag(pool), revision: result.state.revision, created };
  }

  private async writeBackend(poolName: string, address: string, author: string, next: (existing: BackendConfig | undefined) => BackendConfig): Promise<Written<BackendConfig>> {
    let created = false;
    let prefix = '';
    const result = await this.config.commit(
      ({ config }) => {
        const pool = this.find(config, poolName);
        if (!pool) throw notFound(`pool "${poolName}"`);
        const existing = pool.backends.find((b) => b.address === address);
        created = !existing;
        const backend = next(existing);
        const backends = existing ? pool.backends.map((b) => (b.address === address ? backend : b)) : [...pool.backends, backend];
        const out = replacePool(config, { ...pool, backends });
        prefix = `pools[${out.pools.findIndex((p) => p.name === poolName)}].backends[${backends.indexOf(backend)}]`;
        return out;
      },
      { author, message: () => `${created ? 'add' : 'update'} backend ${address} in pool ${poolName}`, errorPath: (e) => relativeTo(prefix)(e) },
    );
    const backend = this.find(result.state.config, poolName)!.backends.find((b) => b.address === address)!;
    return { resource: backend, etag: backendEtag(backend), revision: result.state.revision, created };
  }
}

function replacePool(cfg: SwitchboardConfig, pool: PoolConfig): SwitchboardConfig {
  const exists = cfg.pools.some((p) => p.name === pool.name);
  return { ...cfg, pools: exists ? cfg.pools.map((p) => (p.name === pool.name ? pool : p)) : [...cfg.pools, pool] };
}
