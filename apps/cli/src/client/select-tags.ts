/**
 * Ownership by label, like decK's select tags: with `--select-tag team=payments`, plan, apply
 * and export see only the pools and health policies carrying that label. Resources in the
 * files get the label added; resources on the server without it are left exactly as they are,
 * so two teams can each apply their own files without deleting each other's pools.
 */
import type { SwitchboardConfig } from '#config';

export interface SelectTag {
  key: string;
  value: string;
}

export function parseSelectTags(tags: readonly string[]): SelectTag[] {
  return tags.map((t) => {
    const i = t.indexOf('=');
    if (i <= 0) throw new Error(`--select-tag "${t}" must be key=value, e.g. team=payments`);
    return { key: t.slice(0, i), value: t.slice(i + 1) };
  });
}

const carries = (labels: Record<string, string> | undefined, tags: readonly SelectTag[]): boolean => tags.every((t) => labels?.[t.key] === t.value);
const tagged = <T extends { labels?: Record<string, string> | undefined }>(item: T, tags: readonly SelectTag[]): T => ({
  ...item,
  labels: { ...item.labels, ...Object.fromEntries(tags.map((t) => [t.key, t.value])) },
});

/** Only the resources carrying every tag (all of them without tags). */
export function selectOwned(config: SwitchboardConfig, tags: readonly SelectTag[]): SwitchboardConfig {
  if (tags.length === 0) return config;
  return { healthPolicies: config.healthPolicies.filter((p) => carries(p.labels, tags)), pools: config.pools.filter((p) => carries(p.labels, tags)) };
}

/** The whole config to send: the server's resources that are not ours, plus our files' resources, labelled. */
export function mergeOwned(server: SwitchboardConfig, ours: SwitchboardConfig, tags: readonly SelectTag[]): SwitchboardConfig {
  if (tags.length === 0) return ours;
  return {
    healthPolicies: [...server.healthPolicies.filter((p) => !carries(p.labels, tags)), ...ours.healthPolicies.map((p) => tagged(p, tags))],
    pools: [...server.pools.filter((p) => !carries(p.labels, tags)), ...ours.pools.map((p) => tagged(p, tags))],
  };
}
