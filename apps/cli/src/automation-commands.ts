/** `switchboard plan`, `apply` and `export`: Terraform-style automation over PUT /v1/config. */
import { createInterface } from 'node:readline/promises';
import { Command, Option } from 'commander';
import { stringify } from 'yaml';
import type { ConfigDiff, SwitchboardConfig } from '#config';
import type { ApiClient } from './client/api-client';
import { loadConfigFiles } from './client/config-files';
import { renderPlan, colours } from './client/render';
import { waitConverged, waitOptions } from './client/wait-converged';
import { mergeOwned, parseSelectTags, selectOwned } from './client/select-tags';
import { apiOf, clientCommand, ExitCode, type ClientFlags } from './client-options';

interface FileFlags extends ClientFlags {
  file: string[];
  selectTag: string[];
}

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];
const selectTagOption = (description: string): Option => new Option('--select-tag <key=value>', description).env('SWITCHBOARD_SELECT_TAG').argParser(collect).default([]);

function fileOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('-f, --file <path>', 'YAML or JSON file, or a directory of them (repeatable); ${VAR} is taken from the environment').env('SWITCHBOARD_FILE').argParser(collect).default([]))
    .addOption(selectTagOption('manage only pools and health policies with this label (repeatable)'));
}

/** The local files, validated, merged with what is not ours on the server; and the server's ETag. */
async function desired(api: ApiClient, flags: FileFlags): Promise<{ config: SwitchboardConfig; etag: string | null }> {
  if (flags.file.length === 0) throw new Error('give at least one -f FILE');
  const tags = parseSelectTags(flags.selectTag);
  const loaded = loadConfigFiles(flags.file);
  if (!loaded.ok) throw new Error(`invalid configuration:\n${loaded.errors.join('\n')}`);
  const current = await api.call(api.api.GET('/v1/config'));
  return { config: mergeOwned(current.data as SwitchboardConfig, loaded.config, tags), etag: current.response.headers.get('etag') };
}

export function planCommand(): Command {
  return fileOptions(clientCommand('plan', 'show what apply would change: + create, ~ update (field before → after), - delete; exit 0 no changes, 2 changes, 1 error', 'switchboard plan -f switchboard/ --select-tag team=payments'))
    .action(async (flags: FileFlags) => {
      const api = await apiOf(flags);
      const { config } = await desired(api, flags);
      const plan = (await api.call(api.api.POST('/v1/config/plan', { body: config }))).data as ConfigDiff;
      process.stdout.write(`${renderPlan(plan)}\n`);
      if (plan.changes.length > 0) throw new ExitCode(2);
    });
}

export function applyCommand(): Command {
  return waitOptions(fileOptions(clientCommand('apply', 'apply the files atomically (PUT /v1/config): shows the plan, asks, applies, waits for the balancers', 'switchboard apply -f switchboard.yaml --auto-approve'))
    .addOption(new Option('--auto-approve', 'do not ask for confirmation (needed without a terminal)').env('SWITCHBOARD_AUTO_APPROVE')))
    .action(async (flags: FileFlags & { autoApprove?: boolean; wait: boolean; waitTimeout: string }) => {
      const api = await apiOf(flags);
      const { config, etag } = await desired(api, flags);
      const plan = (await api.call(api.api.POST('/v1/config/plan', { body: config }))).data as ConfigDiff;
      process.stdout.write(`${renderPlan(plan)}\n`);
      if (plan.changes.length === 0) return;
      if (!flags.autoApprove) {
        if (!process.stdin.isTTY) throw new Error('refusing to prompt without a terminal: pass --auto-approve to apply');
        const rl = createInterface({ input: process.stdin, output: process.stdout });
        const answer = await rl.question('\nApply these changes? Only "yes" is accepted: ');
        rl.close();
        if (answer.trim() !== 'yes') {
          process.stdout.write('Apply cancelled.\n');
          throw new ExitCode(1);
        }
      }
      // If-Match: fail rather than overwrite a change made since the plan was computed.
      const result = (await api.call(api.api.PUT('/v1/config', { body: config, headers: etag ? { 'if-match': etag } : {} }))).data;
      process.stdout.write(`${colours().green(`Applied: revision ${result.revision}.`)}\n`);
      if (flags.wait) await waitConverged(api, result.revision, Number(flags.waitTimeout) * 1000);
    });
}

export function exportCommand(): Command {
  return clientCommand('export', 'write the current configuration (apply it back: no changes)', 'switchboard export -o yaml > switchboard.yaml')
    .addOption(new Option('-o, --output <format>', 'yaml or json').choices(['yaml', 'json']).env('SWITCHBOARD_OUTPUT').default('yaml'))
    .addOption(selectTagOption('only pools and health policies with this label (repeatable)'))
    .action(async (flags: ClientFlags & { output: string; selectTag: string[] }) => {
      const api = await apiOf(flags);
      const config = selectOwned((await api.call(api.api.GET('/v1/config'))).data as SwitchboardConfig, parseSelectTags(flags.selectTag));
      process.stdout.write(flags.output === 'json' ? `${JSON.stringify(config, null, 2)}\n` : stringify(config));
    });
}
