/** What the long-running commands (admin, balancer) share: env-backed flags and signal handling. */
import { Option } from 'commander';
import type { Logger } from 'pino';

/** A flag with its SWITCHBOARD_<NAME> environment variable. */
export const flag = (flags: string, description: string, envName: string): Option => new Option(flags, description).env(`SWITCHBOARD_${envName}`);

/** SIGTERM/SIGINT stop gracefully (exit 0, or 1 if stopping fails); a second signal exits at once. */
export function stopOnSignals(log: Logger, stop: () => Promise<void>): void {
  let signals = 0;
  const onSignal = (signal: string): void => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (err: Error) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
}
