/**
 * A picker is the momentary state of one pool: the backends that may take a new call right now,
 * plus whatever cursor its algorithm keeps. It is rebuilt whenever membership, health or drain
 * state changes (the way grpc-js hands a new Picker up through updateState), and asked once per
 * call. `pick` reads the live loads of its endpoints, so the choice is a pure function of that
 * snapshot, the injected random source and the clock.
 */
export interface EndpointLoad {
  /** Relative capacity, 1..1000. */
  readonly weight: number;
  /** Streams sent to this endpoint that it is still working on, as far as the balancer knows. */
  readonly activeStreams: number;
  /** Peak-EWMA of the time to response headers in ms, decayed to `now`; NaN when nothing was measured yet. */
  latencyMs(now: number): number;
}

/** Returns a float in [0, 1). Inject a scripted one in tests. */
export type Random = () => number;

export interface Picker<E extends EndpointLoad> {
  /** The endpoint for the next call, or undefined when there is none. */
  pick(random: Random, now: number): E | undefined;
}

export type PickerFactory = <E extends EndpointLoad>(endpoints: readonly E[]) => Picker<E>;

export const EMPTY_PICKER: Picker<never> = { pick: () => undefined };
