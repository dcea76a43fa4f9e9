import { describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import {
  buildSwiGluGraph,
  createSession,
  GraphBuilder,
  resolveSessionOptions,
  SessionError,
  type SwiGluWeights,
} from '../src/index.ts';

function addGraph(): Uint8Array {
  const g = new GraphBuilder('add');
  const big = g.input('big', 'float', ['N']);
  const x = g.input('x', 'float', [4]);
  const head = g.op('Slice', [big, g.constI64([0]), g.constI64([4])]);
  g.output(g.add(x, head), 'y', 'float', [4]);
  return g.toModelBytes();
}

function smallExpert(h: number, f: number): SwiGluWeights {
  const mk = (rows: number, cols: number) => ({
    shape: [rows, cols],
    data: Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i) * 0.05),
  });
  return { gate: mk(f, h), up: mk(f, h), down: mk(h, f) };
}

describe('onnx session wrapper', () => {
  it('reads subarray feeds at their offset and writes preallocated outputs in place', async () => {
    const session = await createSession(addGraph(), { intraOpThreads: 1 });
    const buffer = Float32Array.from([9, 9, 1, 2, 3, 4, 9]);
    const out = new Float32Array(6);
    const view = out.subarray(1, 5);
    const result = await session.run(
      { big: { data: buffer.subarray(2, 6), dims: [4] }, x: { data: Float32Array.from([10, 20, 30, 40]), dims: [4] } },
      { outputs: { y: { data: view, dims: [4] } } },
    );
    expect(Array.from(out)).toEqual([0, 11, 22, 33, 44, 0]);
    expect(result['y']?.data).toBe(view);
    await session.release();
  });

  it('turns thread-pool spinning off for both pools, with full graph optimisation', () => {
    const options = resolveSessionOptions({ intraOpThreads: 2 });
    expect(options.extra).toEqual({
      session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } },
    });
    expect(options.graphOptimizationLevel).toBe('all');
    expect(options.intraOpNumThreads).toBe(2);
    expect(resolveSessionOptions({ exactQdqInt8: true }).extra).toEqual({
      session: {
        intra_op: { allow_spinning: '0' },
        inter_op: { allow_spinning: '0' },
        qdq_matmulnbits_accuracy_level: '0',
      },
    });
  });

  it("keeps onnxruntime's per-shape memory pattern off unless asked (a serving engine's shapes change every step)", () => {
    expect(resolveSessionOptions().enableMemPattern).toBe(false);
    expect(resolveSessionOptions({ memPattern: true }).enableMemPattern).toBe(true);
  });

  it('gives the intra-op pool every core unless told a thread count', () => {
    expect(resolveSessionOptions().intraOpNumThreads).toBe(availableParallelism());
    expect(resolveSessionOptions({ intraOpThreads: 1 }).intraOpNumThreads).toBe(1);
  });

  it('turns spinning on only when asked (bench:spinning measures what it costs)', () => {
    expect(resolveSessionOptions({ spinning: true }).extra).toEqual({
      session: { intra_op: { allow_spinning: '1' }, inter_op: { allow_spinning: '1' } },
    });
    expect(resolveSessionOptions({ spinning: false }).extra).toEqual({
      session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } },
    });
  });

  it('passes the cuda provider through and reports a typed error when it cannot load', async () => {
    const bytes = buildSwiGluGraph(smallExpert(4, 8));
    const attempt = createSession(bytes, { executionProvider: 'cuda', logSeverityLevel: 4 });
    await expect(attempt).rejects.toBeInstanceOf(SessionError);
    await expect(attempt).rejects.toMatchObject({ code: 'SESSION_CREATE' });
  });

  it('exposes graph input and output names', async () => {
    const session = await createSession(addGraph());
    expect([...session.inputNames]).toEqual(['big', 'x']);
    expect([...session.outputNames]).toEqual(['y']);
    await session.release();
  });
});
