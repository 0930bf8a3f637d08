import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { MethodMetrics, OTHER_METHOD } from './method-metrics';

describe('MethodMetrics', () => {
  it('names the first N methods and counts the rest as other: cardinality stays bounded whatever clients send', async () => {
    const registry = new Registry();
    const m = new MethodMetrics(registry, 2);
    m.callEnded('p', '/a.S/One', 'OK', 0.01);
    m.callEnded('p', '/a.S/Two', 'OK', 0.01);
    for (let i = 0; i < 1000; i++) m.callEnded('p', `/junk.S/M${i}`, 'UNIMPLEMENTED', 0.001);
    m.callEnded('p', '/a.S/One', 'NOT_FOUND', 0.02);
    const text = await registry.metrics();
    expect(text).toContain('switchboard_method_calls_total{pool="p",method="a.S/One",code="OK"} 1');
    expect(text).toContain('switchboard_method_calls_total{pool="p",method="a.S/One",code="NOT_FOUND"} 1');
    expect(text).toContain(`switchboard_method_calls_total{pool="p",method="${OTHER_METHOD}",code="UNIMPLEMENTED"} 1000`);
    expect(text.match(/^switchboard_method_calls_total\{/gm)).toHaveLength(4);
  });
});
