/** `--server` and `--token` (env SWITCHBOARD_URL, SWITCHBOARD_TOKEN) on every client command. */
import { Command, Option } from 'commander';
import type { ApiClient } from './client/api-client';

export interface ClientFlags {
  server: string;
  token?: string;
  /** A CA (PEM file) to trust for an HTTPS admin, beside the system's. */
  ca?: string;
}

export function clientCommand(name: string, description: string, example: string): Command {
  return new Command(name)
    .description(description)
    .addOption(new Option('--server <url>', 'admin REST API').env('SWITCHBOARD_URL').default('http://127.0.0.1:8080'))
    .addOption(new Option('--token <token>', 'API token').env('SWITCHBOARD_TOKEN'))
    .addOption(new Option('--ca <file>', 'trust this CA (PEM) for an HTTPS admin, beside the system\'s').env('SWITCHBOARD_CA'))
    .addHelpText('after', `\nExample:\n  ${example}\n`);
}

/**
 * The API client for a command's flags. Loaded on first use: the HTTP client (undici) and the
 * generated API client stay out of the processes that never call the API (a balancer and its
 * workers, an admin), whose heaps would otherwise hold their code for good.
 */
export const apiOf = async (flags: ClientFlags): Promise<ApiClient> => {
  const { ApiClient: Client } = await import('./client/api-client.js');
  return new Client(flags.server, flags.token, flags.ca);
};

/** Exit codes: 0 success (plan: no changes), 1 error, 2 plan: changes pending. */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
