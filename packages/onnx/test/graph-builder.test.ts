import { describe, expect, it } from 'vitest';
import { attrFloat, attrInt, GraphBuilder } from '../src/graph-builder.ts';
import { createSession } from '../src/index.ts';

describe('graph builder', () => {
  it('serialises a model onnxruntime runs, with int and float attributes kept apart', async () => {
    const g = new GraphBuilder('attrs');
    const x = g.input('x', 'float', ['N', 3]);
    const y = g.op('LeakyRelu', [x], { alpha: attrFloat(0.5) });
    const soft = g.op('Softmax', [y], { axis: attrInt(1) });
    g.output(y, 'y', 'float', ['N', 3]);
    g.output(soft, 'soft', 'float', ['N', 3]);
    const session = await createSession(g.toModelBytes());
    const result = await session.run({ x: { data: Float32Array.from([-2, 0, 2]), dims: [1, 3] } });
    expect(Array.from(result['y']?.data ?? [])).toEqual([-1, 0, 2]);
    expect(result['soft']?.data.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    await session.release();
  });

  it('keeps using a value after it was exported, and can export it twice or pass an input through', async () => {
    const g = new GraphBuilder('aliases');
    const x = g.input('x', 'float', [2]);
    const doubled = g.add(x, x);
    g.output(doubled, 'first', 'float', [2]);
    g.output(doubled, 'second', 'float', [2]);
    g.output(g.mul(doubled, doubled), 'squared', 'float', [2]);
    g.output(x, 'echo', 'float', [2]);
    const session = await createSession(g.toModelBytes());
    const result = await session.run({ x: { data: Float32Array.from([1, 3]), dims: [2] } });
    expect(Array.from(result['first']?.data ?? [])).toEqual([2, 6]);
    expect(Array.from(result['second']?.data ?? [])).toEqual([2, 6]);
    expect(Array.from(result['squared']?.data ?? [])).toEqual([4, 36]);
    expect(Array.from(result['echo']?.data ?? [])).toEqual([1, 3]);
    await session.release();
  });

  it('refuses an initializer whose data does not fill its dims', () => {
    const g = new GraphBuilder('bad');
    expect(() => g.initializer('w', new Float32Array(5), [2, 3])).toThrow(/5 elements for dims \[2, 3\]/);
  });
});
