/**
 * Validation of a config that reuses what is known to be valid, in slices. A resource of the
 * candidate that is the very object of the same name in `known` (a validated config), or equal to
 * it as JSON, is taken as it is; the others go through their schema; the checks across resources
 * then run on the whole. So a write that changes one backend of 10,000 validates one backend plus
 * a linear pass, and a whole config yields to the event loop between slices instead of holding it.
 *
 * "Equal" counts a field the candidate leaves out as its schema default, so a client that sends the
 * short form (`{"address": "…"}`, no weight) gets its untouched resources reused too.
 *
 * The result is the one validateConfig gives. On any error it is validateConfig's own result,
 * so errors read the same on every path.
 */
import { sameJson } from './diff';
import { validateConfig, type ConfigResult } from './parse';
import { backendSchema, crossResourceIssues, healthPolicySchema, poolSchema, type BackendConfig, type HealthPolicyConfig, type PoolConfig, type SwitchboardConfig } from './schema';

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** What a schema fills in for a field left out, from a minimal resource parsed once. */
const backendDefaults: Record<string, unknown> = (({ address: _a, ...rest }) => rest)(backendSchema.parse({ address: '127.0.0.1:1' }));
const poolDefaults: Record<string, unknown> = (({ name: _n, match: _m, backends: _b, ...rest }) => rest)(poolSchema.parse({ name: 'p', match: { services: ['*'] } }));

/**
 * `raw` (a candidate resource, as sent) validates to `known` (a validated one): every field it
 * has is equal to known's, and every other field of known's is that field's default.
 */
function sameAsKnown(raw: Record<string, unknown>, known: object, defaults: Record<string, unknown>): boolean {
  const k = known as Record<string, unknown>;
  for (const key in raw) if (raw[key] !== undefined && !(Object.hasOwn(k, key) && sameJson(raw[key], k[key]))) return false;
  for (const key in k) {
    if (k[key] === undefined || raw[key] !== undefined) continue;
    if (!(Object.hasOwn(defaults, key) && sameJson(defaults[key], k[key]))) return false;
  }
  return true;
}

/** Thrown inside to fall back to the whole-config validation (for its error list). */
const INVALID = Symbol('invalid');

/** Lets the event loop run (timers, I/O) before the next slice. */
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export async function validateConfigSteps(value: unknown, known: SwitchboardConfig | null, pause: () => Promise<void> = yieldToEventLoop, sliceMs = 10): Promise<ConfigResult> {
  if (!isObject(value) || Object.keys(value).some((k) => k !== 'healthPolicies' && k !== 'pools')) return validateConfig(value);
  const rawPolicies = value.healthPolicies ?? [];
  const rawPools = value.pools ?? [];
  if (!Array.isArray(rawPolicies) || !Array.isArray(rawPools)) return validateConfig(value);
  let sliceStart = performance.now();
  const maybePause = async (): Promise<void> => {
    if (performance.now() - sliceStart < sliceMs) return;
    await pause();
    sliceStart = performance.now();
  };
  try {
    const knownPolicies = new Map((known?.healthPolicies ?? []).map((p) => [p.name, p]));
    const healthPolicies = rawPolicies.map((raw: unknown): HealthPolicyConfig => {
      const same = isObject(raw) ? knownPolicies.get(raw.name as string) : undefined;
      if (same !== undefined && (raw === same || sameJson(raw, same))) return same;
      const parsed = healthPolicySchema.safeParse(raw);
      if (!parsed.success) throw INVALID;
      return parsed.data;
    });
    const knownPools = new Map((known?.pools ?? []).map((p) => [p.name, p]));
    const pools: PoolConfig[] = [];
    for (const raw of rawPools as unknown[]) {
      pools.push(poolOf(raw, isObject(raw) ? knownPools.get(raw.name as string) : undefined));
      await maybePause();
    }
    const config = { healthPolicies, pools };
    if (crossResourceIssues(config).length > 0) throw INVALID;
    return { ok: true, config };
  } catch (err) {
    if (err === INVALID) return validateConfig(value);
    throw err;
  }
}

function poolOf(raw: unknown, same: PoolConfig | undefined): PoolConfig {
  if (same !== undefined && raw === same) return same;
  if (!isObject(raw) || (raw.backends !== undefined && !Array.isArray(raw.backends))) throw INVALID;
  const { backends: rawBackends = [], ...rawFields } = raw as { backends?: unknown[] };
  let pool: PoolConfig;
  const fieldsKnown = same !== undefined && sameAsKnown(rawFields, withoutBackends(same), poolDefaults);
  if (fieldsKnown) pool = { ...same! };
  else {
    const parsed = poolSchema.safeParse({ ...rawFields, backends: [] });
    if (!parsed.success) throw INVALID;
    pool = parsed.data;
  }
  const knownBackends = new Map((same?.backends ?? []).map((b) => [b.address, b]));
  let unchanged = fieldsKnown && rawBackends.length === same!.backends.length;
  pool.backends = rawBackends.map((b, i): BackendConfig => {
    const was = isObject(b) ? knownBackends.get(b.address as string) : undefined;
    if (was !== undefined && (b === was || sameAsKnown(b as Record<string, unknown>, was, backendDefaults))) {
      if (was !== same!.backends[i]) unchanged = false;
      return was;
    }
    unchanged = false;
    const parsed = backendSchema.safeParse(b);
    if (!parsed.success) throw INVALID;
    return parsed.data;
  });
  // Nothing changed: the known pool itself, so what follows (diff, canonical form) sees the same object.
  return unchanged ? same! : pool;
}

function withoutBackends(pool: PoolConfig): Omit<PoolConfig, 'backends'> {
  const { backends: _backends, ...fields } = pool;
  return fields;
}
