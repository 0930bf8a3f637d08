/**
 * The one key of a backend wherever backends are matched up: across revisions (config/runtime.ts),
 * between a worker and its primary (cluster/), in merged state. A pool name cannot hold a NUL,
 * so pool and address never run into each other.
 */
export const backendKey = (pool: string, address: string): string => `${pool}\0${address}`;
