import { describe, expect, it } from '@jest/globals';
import { workerExecArgv } from './worker-exec-argv';

describe('workerExecArgv', () => {
  it('gives each worker its share of the cores the workers leave free, between 1 and 4 threads', () => {
    expect(workerExecArgv([], undefined, 2, 2)).toEqual(['--v8-pool-size=1']);
    expect(workerExecArgv([], undefined, 2, 1)).toEqual(['--v8-pool-size=1']);
    expect(workerExecArgv([], undefined, 16, 4)).toEqual(['--v8-pool-size=3']);
    expect(workerExecArgv([], undefined, 64, 2)).toEqual(['--v8-pool-size=4']);
    expect(workerExecArgv([], undefined, 8, 8)).toEqual(['--v8-pool-size=1']);
  });

  it('keeps the primary\'s options, and the operator\'s pool size wherever it was given', () => {
    expect(workerExecArgv(['--enable-source-maps'], undefined, 2, 2)).toEqual(['--enable-source-maps', '--v8-pool-size=1']);
    expect(workerExecArgv(['--v8-pool-size=6'], undefined, 2, 2)).toEqual(['--v8-pool-size=6']);
    expect(workerExecArgv([], '--max-old-space-size=512 --v8-pool-size=2', 2, 2)).toEqual([]);
  });
});
