import { describe, expect, it } from '@jest/globals';
import { DATA_PLANE_SEMI_SPACE_MIB, dataPlaneExecArgv, semiSpaceGiven } from './young-generation';

describe('the data plane young generation', () => {
  it('is added to node arguments that set none', () => {
    expect(dataPlaneExecArgv([], undefined)).toEqual([`--max-semi-space-size=${DATA_PLANE_SEMI_SPACE_MIB}`]);
    expect(dataPlaneExecArgv(['--enable-source-maps'], '--heap-growing-percent=30')).toEqual([`--max-semi-space-size=${DATA_PLANE_SEMI_SPACE_MIB}`, '--enable-source-maps']);
  });

  it('keeps a size given on the command line or in NODE_OPTIONS, in any spelling', () => {
    for (const [argv, env] of [
      [['--max-semi-space-size=16'], undefined],
      [['--max_semi_space_size=8'], ''],
      [['--max-semi-space-size', '32'], undefined],
      [[], '--inspect --max-semi-space-size=16'],
      [[], '  --max-semi-space-size 16  '],
    ] as [string[], string | undefined][]) {
      expect(semiSpaceGiven(argv, env)).toBe(true);
      expect(dataPlaneExecArgv(argv, env)).toEqual(argv);
    }
  });

  it('is not fooled by flags that only look alike', () => {
    expect(semiSpaceGiven(['--max-semi-space-sizes=1', '--min-semi-space-size=1', '--semi-space-growth-factor=2'], '--max-old-space-size=512')).toBe(false);
  });
});
