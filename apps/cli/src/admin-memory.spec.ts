import { describe, expect, it } from '@jest/globals';
import { getHeapStatistics } from 'node:v8';
import { ADMIN_HEAP_GROWING_PERCENT, ADMIN_WASM_TIERING_BUDGET, tuneAdminMemory } from './admin-memory';

describe('tuneAdminMemory', () => {
  it('sets both V8 settings when the process was started without them', () => {
    expect(tuneAdminMemory(['--enable-source-maps'])).toEqual([`--heap-growing-percent=${ADMIN_HEAP_GROWING_PERCENT}`, `--wasm-tiering-budget=${ADMIN_WASM_TIERING_BUDGET}`]);
    expect(getHeapStatistics().total_heap_size).toBeGreaterThan(0); // V8 took them and goes on
  });

  it("keeps an operator's own value, spelled with dashes or underscores", () => {
    expect(tuneAdminMemory(['--heap_growing_percent=80'])).toEqual([`--wasm-tiering-budget=${ADMIN_WASM_TIERING_BUDGET}`]);
    expect(tuneAdminMemory(['--wasm-tiering-budget=1800000', '--heap-growing-percent=10'])).toEqual([]);
    // A longer flag that only starts the same is not the one.
    expect(tuneAdminMemory(['--heap-growing-percentage=3'])).toHaveLength(2);
  });
});
