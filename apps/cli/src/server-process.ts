/** What the long-running commands (admin, balancer) share: env-backed flags and how they stop. */
import { Option } from 'commander';
import type { ProcessLogger } from './process-logger';

/** A flag with its SWITCHBOARD_<NAME> environment variable. */
export const flag = (flags: string, description: string, envName: string): Option => new Option(flags, description).env(`SWITCHBOARD_${envName}`);

/** Extra time past the drain timeout before a stop that has not finished becomes an exit. */
const STOP_GRACE_MS = 5_000;

/**
 * SIGTERM/SIGINT stop gracefully (exit 0, or 1 if stopping fails); a second signal exits at once.
 * Whatever hangs (a peer that never closes, a log nobody reads), the process exits within
 * `drainTimeoutMs` plus STOP_GRACE_MS of the first signal.
 *
 * With SWITCHBOARD_EXIT_WITH_PARENT=1 the process also stops when its standard input ends: a
 * parent such as `npm start` holds the other end of that pipe, and the kernel closes it when the
 * parent dies, however it dies (SIGKILL included), so no child outlives it on its ports.
 */
export function stopOnSignals({ log, flush }: ProcessLogger, stop: () => Promise<void>, drainTimeoutMs: number): void {
  let stops = 0;
  const exit = (code: number): void => {
    void flush(500).then(() => process.exit(code));
  };
  const onStop = (why: string): void => {
    if (++stops > 1) {
      log.warn({ signal: why }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal: why }, 'shutting down');
    const hard = setTimeout(() => {
      log.error({ afterMs: drainTimeoutMs + STOP_GRACE_MS }, 'shutdown did not finish in time: exiting');
      exit(1);
    }, drainTimeoutMs + STOP_GRACE_MS);
    hard.unref();
    stop().then(
      () => exit(0),
      (err: Error) => {
        log.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onStop('SIGTERM'));
  process.on('SIGINT', () => onStop('SIGINT'));
  if (process.env.SWITCHBOARD_EXIT_WITH_PARENT === '1') {
    process.stdin.on('error', () => {});
    process.stdin.on('data', () => {});
    process.stdin.once('end', () => onStop('parent gone (stdin closed)'));
  }
}
