import { cpus } from 'node:os';
import { Worker } from 'node:worker_threads';
import { GraphBuilder } from './graph-builder.ts';
import { createSession } from './session.ts';

/**
 * The physical ceilings the engine bench compares against, measured in the same run:
 * memory bandwidth of a large typed-array read, and the FLOP/s of one large onnxruntime MatMul.
 */

const READER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const data = new Float32Array(workerData.buffer, workerData.offset, workerData.length);
parentPort.on('message', () => {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (let i = 0; i < data.length; i += 4) { s0 += data[i]; s1 += data[i + 1]; s2 += data[i + 2]; s3 += data[i + 3]; }
  parentPort.postMessage(s0 + s1 + s2 + s3);
});
`;

/**
 * Bytes per second of summing a large Float32Array, split across `threads` worker threads reading
 * their halves (quarters, …) at the same time, as onnxruntime's intra-op threads do (best of `repeats`).
 */
export async function measureReadBandwidth(sizeBytes = 1 << 30, repeats = 5, threads = cpus().length): Promise<number> {
  const buffer = new SharedArrayBuffer(sizeBytes);
  const all = new Float32Array(buffer);
  for (let i = 0; i < all.length; i += 1024) all[i] = i;
  const per = Math.floor(all.length / threads / 4) * 4;
  const workers = Array.from(
    { length: threads },
    (_, t) => new Worker(READER_SOURCE, { eval: true, workerData: { buffer, offset: t * per * 4, length: per } }),
  );
  try {
    const pass = () =>
      Promise.all(
        workers.map(
          (w) =>
            new Promise((resolve) => {
              w.once('message', resolve);
              w.postMessage('go');
            }),
        ),
      );
    await pass();
    let best = Infinity;
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      await pass();
      best = Math.min(best, performance.now() - t0);
    }
    return (per * threads * 4) / (best / 1000);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
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
