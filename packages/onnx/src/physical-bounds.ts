import { availableParallelism } from 'node:os';
import { attrInt, GraphBuilder } from './graph-builder.ts';
import { OnnxDataType } from './onnx-proto.ts';
import { createSession, type OnnxSession, type TensorFeed } from './session.ts';

/**
 * The physical ceilings the engine bench compares against, measured in the same run with kernels that
 * are themselves at those ceilings, on every core:
 * - read bandwidth: an onnxruntime `ReduceSum` over a ≥ 1 GiB float32 tensor read in place, rows split
 *   over the intra-op threads. It does one add per 4 bytes read, so its vectorised loop waits on memory,
 *   not on arithmetic (on the 2-core development VM it matched a native AVX-512 OpenMP read of the same
 *   size to within a few percent, see docs/architecture.md §4).
 * - MatMul peak: one large fp32 GEMM (MLAS's packed SGEMM), big enough that packing and thread hand-off
 *   are noise.
 *
 * NOTE: the previous read probe summed a Float32Array in scalar JavaScript: that loop is compute-bound at
 * ≈ 7 GB/s per thread, so it understated the bound 2–3× and the bench printed decode "above" it.
 */
export interface PhysicalBound {
  /** Bytes per second (bandwidth) or FLOP per second (MatMul). */
  readonly value: number;
  readonly threads: number;
  /** How it was measured, in words, for the bench's output. */
  readonly method: string;
}

export interface BoundOptions {
  /** Threads of the kernel's intra-op pool (default: every core the process may use). */
  readonly threads?: number;
  /**
   * Timed runs after one warm-up; the best is kept (default 10 for bandwidth, 5 for MatMul). A run is
   * only ever slowed by other load, so the best of many is the figure nearest the machine's.
   */
  readonly repeats?: number;
}

/** Rows of the reduction: enough to split evenly over any thread count we will see. */
const REDUCE_ROWS = 1024;

/** Best-of-`repeats` wall time of `session.run(feeds)` in ms, after one untimed run. */
async function bestRunMs(
  session: OnnxSession,
  feeds: Readonly<Record<string, TensorFeed>>,
  repeats: number,
): Promise<number> {
  await session.run(feeds);
  let best = Infinity;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    await session.run(feeds);
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

/**
 * Read bandwidth (bytes/s) of an onnxruntime `ReduceSum` over `sizeBytes` (default 1 GiB) of float32, on
 * `threads` intra-op threads (default all cores); best of `repeats` (default 10).
 */
export async function measureReadBandwidth(
  sizeBytes = 1 << 30,
  { threads = availableParallelism(), repeats = 10 }: BoundOptions = {},
): Promise<PhysicalBound> {
  const cols = Math.max(16, Math.floor(sizeBytes / 4 / REDUCE_ROWS / 16) * 16);
  const g = new GraphBuilder('read_bandwidth');
  const x = g.input('x', 'float', [REDUCE_ROWS, cols]);
  const axes = g.initializer('axes', BigInt64Array.from([1n]), [1]);
  g.output(g.op('ReduceSum', [x, axes], { keepdims: attrInt(0) }), 'y', 'float', [REDUCE_ROWS]);
  const session = await createSession(g.toModelBytes(), { intraOpThreads: threads });
  // Non-zero pages: a never-written buffer could be served from the shared zero page.
  const data = new Float32Array(REDUCE_ROWS * cols).fill(1e-3);
  try {
    const ms = await bestRunMs(session, { x: { data, dims: [REDUCE_ROWS, cols] } }, repeats);
    return {
      value: data.byteLength / (ms / 1000),
      threads,
      method: `onnxruntime ReduceSum over ${(data.byteLength / 2 ** 30).toFixed(2)} GiB of float32 on ${threads} intra-op threads, best of ${repeats}`,
    };
  } finally {
    await session.release();
  }
}

/**
 * FLOP/s of one [m, k] × [k, n] fp32 MatMul (default 1024 × 4096 × 4096, ≈ 34 GFLOP) on `threads`
 * intra-op threads (default all cores); best of `repeats`.
 */
export async function measureMatMulFlops(
  m = 1024,
  k = 4096,
  n = 4096,
  { threads = availableParallelism(), repeats = 5 }: BoundOptions = {},
): Promise<PhysicalBound> {
  const g = new GraphBuilder('matmul_peak');
  const x = g.input('x', 'float', [m, k]);
  const w = new Float32Array(k * n);
  for (let i = 0; i < w.length; i++) w[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  g.output(g.matmul(x, g.initializer('w', w, [k, n])), 'y', 'float', [m, n]);
  const session = await createSession(g.toModelBytes(), { intraOpThreads: threads });
  const input = new Float32Array(m * k).fill(0.01);
  try {
    const ms = await bestRunMs(session, { x: { data: input, dims: [m, k] } }, repeats);
    return {
      value: (2 * m * k * n) / (ms / 1000),
      threads,
      method: `onnxruntime fp32 MatMul [${m}×${k}]·[${k}×${n}] on ${threads} intra-op threads, best of ${repeats}`,
    };
  } finally {
    await session.release();
  }
}

/**
 * Integer ops/s (2 per multiply-add) of one [m, k] × [k, n] `MatMulInteger` (uint8 × int8, MLAS's
 * u8s8 QGEMM, VNNI where the CPU has it), the kernel int8 layers run in, on `threads` intra-op
 * threads; best of `repeats`. The bound for int8 prefill: an int8 GEMM does several times the fp32
 * FLOP/s, so an int8 prefill held against the fp32 peak reads "above" it.
 */
export async function measureInt8MatMulOps(
  m = 1024,
  k = 4096,
  n = 4096,
  { threads = availableParallelism(), repeats = 5 }: BoundOptions = {},
): Promise<PhysicalBound> {
  const g = new GraphBuilder('int8_matmul_peak');
  const x = g.input('x', 'uint8', [m, k]);
  const w = new Int8Array(k * n);
  for (let i = 0; i < w.length; i++) w[i] = ((i * 2654435761) % 255) - 127;
  const zeroA = g.initializer('a_zero_point', Uint8Array.from([128]), []);
  const zeroB = g.initializer('b_zero_point', new Int8Array(1), []);
  const acc = g.op('MatMulInteger', [x, g.initializer('w', w, [k, n]), zeroA, zeroB]);
  g.output(g.op('Cast', [acc], { to: attrInt(OnnxDataType.float) }), 'y', 'float', [m, n]);
  const session = await createSession(g.toModelBytes(), { intraOpThreads: threads });
  const input = new Uint8Array(m * k).fill(131);
  try {
    const ms = await bestRunMs(session, { x: { data: input, dims: [m, k] } }, repeats);
    return {
      value: (2 * m * k * n) / (ms / 1000),
      threads,
      method: `onnxruntime MatMulInteger u8×s8 [${m}×${k}]·[${k}×${n}] on ${threads} intra-op threads, best of ${repeats}`,
    };
  } finally {
    await session.release();
  }
}
