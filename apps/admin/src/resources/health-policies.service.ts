/** Health policies as REST resources; deleting one that pools use is a 409 naming them. */
import { Injectable } from '@nestjs/common';
import { entityTag, healthPolicySchema, type HealthPolicyConfig, type SwitchboardConfig } from '#config';
import { ConfigService, type CommitResult } from '../config/config.service';
import { paginate, type ListQuery, type Page } from '../http/list-query';
import { mergePatch } from '../http/merge-patch';
import { checkIfMatch } from '../http/preconditions';
import { conflict, notFound } from '../http/problem';
import { bodyWithKey, parseWith, relativeTo } from '../http/validation';
import { putNamed } from './named-list';
import type { Written } from './pools.service';

export const policyEtag = (p: HealthPolicyConfig): string => entityTag(p);

@Injectable()
export class HealthPoliciesService {
  constructor(private readonly config: ConfigService) {}

  list(q: ListQuery): Page<HealthPolicyConfig> {
    return paginate(this.config.current().config.healthPolicies, (p) => p.name, q);
  }

  get(name: string): { policy: HealthPolicyConfig; etag: string } {
    const policy = find(this.config.current().config, name);
    if (!policy) throw notFound(`health policy "${name}"`);
    return { policy, etag: policyEtag(policy) };
  }

  create(body: unknown, author: string): Promise<Written<HealthPolicyConfig>> {
    const policy = parseWith(healthPolicySchema, body);
    return this.write(policy.name, author, (existing) => {
      if (existing) throw conflict('exists', `health policy "${policy.name}" already exists; PUT /v1/health-policies/${policy.name} replaces it`);
      return policy;
    });
  }

  put(name: string, body: unknown, ifMatch: string | undefined, author: string): Promise<Written<HealthPolicyConfig>> {
    const policy = parseWith(healthPolicySchema, bodyWithKey(body, 'name', name));
    return this.write(name, author, (existing) => {
      checkIfMatch(ifMatch, existing && policyEtag(existing), `health policy "${name}"`);
      return policy;
    });
  }

  patch(name: string, body: unknown, ifMatch: string | undefined, author: string): Promise<Written<HealthPolicyConfig>> {
    bodyWithKey(body, 'name', name);
    return this.write(name, author, (existing) => {
      if (!existing) throw notFound(`health policy "${name}"`);
      checkIfMatch(ifMatch, policyEtag(existing), `health policy "${name}"`);
      return parseWith(healthPolicySchema, mergePatch(existing, body));
    });
  }

  delete(name: string, ifMatch: string | undefined, author: string): Promise<CommitResult> {
    return this.config.commit(
      ({ config }) => {
        const existing = find(config, name);
        if (!existing) throw notFound(`health policy "${name}"`);
        checkIfMatch(ifMatch, policyEtag(existing), `health policy "${name}"`);
        const users = config.pools.filter((p) => p.healthPolicy === name).map((p) => p.name);
        if (users.length > 0) throw conflict('in-use', `health policy "${name}" is used by pool${users.length > 1 ? 's' : ''} ${users.join(', ')}`, { pools: users });
        return { ...config, healthPolicies: config.healthPolicies.filter((p) => p.name !== name) };
      },
      { author, message: `delete health policy ${name}` },
    );
  }

  private async write(name: string, author: string, next: (existing: HealthPolicyConfig | undefined) => HealthPolicyConfig): Promise<Written<HealthPolicyConfig>> {
    let created = false;
    let index = 0;
    const result = await this.config.commit(
      ({ config }) => {
        const existing = find(config, name);
        created = !existing;
        const put = putNamed(config.healthPolicies, next(existing));
        index = put.index;
        return { ...config, healthPolicies: put.list };
      },
      { author, message: () => `${created ? 'create' : 'update'} health policy ${name}`, errorPath: (e) => relativeTo(`healthPolicies[${index}]`)(e) },
    );
    const policy = find(result.state.config, name)!;
    return { resource: policy, etag: policyEtag(policy), revision: result.state.revision, created };
  }
}

function find(cfg: SwitchboardConfig, name: string): HealthPolicyConfig | undefined {
  return cfg.healthPolicies.find((p) => p.name === name);
}
