/** A pool's `streams`: long-lived streams rebalanced, aged out and drained (issue 23). */
import { z } from 'zod';
import { described } from './schema-parts';

export const streamRebalanceSchema = z.strictObject({
  tolerancePercent: described(z.int().min(1).max(100), 'A backend may carry this much more or less than its weighted share of the pool\'s long-lived streams before streams are moved.', 20).default(20),
  maxPerSecond: described(z.int().min(1).max(10_000), 'Most streams ended per second for this pool on one balancer (all its workers together).', 10).default(10),
  minAgeMs: described(z.int().min(0).max(86_400_000), 'Never end a stream younger than this, in ms (and a call counts as a long-lived stream only from this age).', 10_000).default(10_000),
});

export const streamsSchema = z
  .strictObject({
    rebalance: described(streamRebalanceSchema, 'After the pool changes (a backend joins, returns to health or from ejection, finishes slow start), end the oldest streams of over-loaded backends (UNAVAILABLE "rebalanced"), so that clients re-open them on the others.', { tolerancePercent: 20, maxPerSecond: 10, minAgeMs: 10000 }).optional(),
    maxAgeMs: described(z.int().min(1000).max(30 * 86_400_000), 'End a stream older than this (jittered), in ms, with UNAVAILABLE "max stream age".', 600000).optional(),
    maxAgeJitterPercent: described(z.int().min(0).max(50), 'Each stream\'s maximum age is maxAgeMs plus or minus up to this percent.', 10).default(10),
    drainTimeoutMs: described(z.int().min(0).max(86_400_000), 'Streams still open on a drained or removed backend end this long after (UNAVAILABLE "drained"), in ms; absent: they finish on their own.', 60000).optional(),
  });

export type StreamsConfig = z.output<typeof streamsSchema>;
