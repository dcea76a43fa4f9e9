import { createSession, GraphBuilder } from '@switchyard/model';

/**
 * The physical ceilings the engine bench compares against, measured in the same run:
 * memory bandwidth of a large typed-array read, and the FLOP/s of one large onnxruntime MatMul.
 */

/** Bytes per second of summing a large Float32Array (best of `repeats`). */
export function measureReadBandwidth(sizeBytes = 1 << 30, repeats = 5): number {
  const data = new Float32Array(sizeBytes / 4);
  for (let i = 0; i < data.length; i += 1024) data[i] = i;
  let best = Infinity;
  let sink = 0;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let i = 0; i < data.length; i += 4) {
      s0 += data[i] ?? 0;
      s1 += data[i + 1] ?? 0;
      s2 += data[i + 2] ?? 0;
      s3 += data[i + 3] ?? 0;
    }
    sink += s0 + s1 + s2 + s3;
    best = Math.min(best, performance.now() - t0);
  }
  if (sink === -1) console.error(sink);
  return sizeBytes / (best / 1000);
}

/** FLOP/s of a [m, k] × [k, n] fp32 MatMul in onnxruntime with its default (all-core) thread pool. */
export async function measureMatMulFlops(m = 512, k = 2048, n = 4096, repeats = 5): Promise<number> {
  const g = new GraphBuilder('matmul_peak');
  const x = g.input('x', 'float', [m, k]);
  const w = new Float32Array(k * n);
  for (let i = 0; i < w.length; i++) w[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  g.output(g.matmul(x, g.initializer('w', w, [k, n])), 'y', 'float', [m, n]);
  const session = await createSession(g.toModelBytes());
  const input = new Float32Array(m * k).fill(0.01);
  try {
    await session.run({ x: { data: input, dims: [m, k] } });
    let best = Infinity;
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      await session.run({ x: { data: input, dims: [m, k] } });
      best = Math.min(best, performance.now() - t0);
    }
    return (2 * m * k * n) / (best / 1000);
  } finally {
    await session.release();
  }
}
