/** Runs the real `switchboard` CLI binary and collects its exit code and output. */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

const CLI = path.join(process.cwd(), 'bin/switchboard.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 20_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const fullEnv: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', ...env };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete fullEnv[k];
    const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: fullEnv });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`switchboard ${args.join(' ')} did not finish within ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
