/**
 * Configuration from a YAML or JSON file (`switchboard balancer --config FILE`). Read at start
 * (an invalid file stops the start-up with every error listed) and again on SIGHUP (an invalid
 * file is logged, field by field, and the running revision keeps serving). Each successful load
 * is the next local revision number.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { describeErrors, parseConfigText } from '#config';
import type { ConfigSink, ConfigSource } from './config-source';

export class ConfigFileError extends Error {}

export class FileConfigSource implements ConfigSource {
  private revision = 0;
  private sink: ConfigSink | null = null;
  private readonly onHup = (): void => {
    this.log.info({ file: this.file }, 'SIGHUP: re-reading the configuration file');
    this.load().catch((err: Error) => this.sink!.reject(err.message));
  };

  constructor(
    private readonly file: string,
    private readonly log: Logger,
  ) {}

  async start(sink: ConfigSink): Promise<void> {
    this.sink = sink;
    await this.load();
    process.on('SIGHUP', this.onHup);
  }

  stop(): void {
    process.off('SIGHUP', this.onHup);
  }

  /** Reads, validates and applies the file; rejects with ConfigFileError naming every bad field. */
  async load(): Promise<number> {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      throw new ConfigFileError(`cannot read ${this.file}: ${(err as Error).message}`);
    }
    const result = parseConfigText(text);
    if (!result.ok) throw new ConfigFileError(`invalid configuration:\n${describeErrors(result.errors, this.file)}`);
    const revision = this.revision + 1;
    await this.sink!.apply(result.config, revision);
    this.revision = revision;
    return revision;
  }
}
