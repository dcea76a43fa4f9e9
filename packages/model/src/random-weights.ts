/**
 * Seeded random weights for a config. Each tensor has its own PRNG stream keyed by (seed, tensor name),
 * so tensors can be generated lazily, one at a time and in any order, and the same (config, seed) gives
 * byte-identical weights on any machine.
 *
 * Initialisation (chosen so a random model behaves like a trained one numerically, not linguistically):
 * - linear weights ~ N(0, 1/fan_in): each projection keeps activations O(1);
 * - embeddings ~ N(0, 1): the residual stream starts at unit scale;
 * - norm weights ~ 1 + N(0, 0.05²): close to identity but not exactly, so a missing norm shows up in tests;
 * - biases ~ N(0, 0.05²);
 * - router ~ N(0, (2/√H)²): logits of std ≈ 2, so top-k choices are well separated, not near ties;
 * - selection bias ~ N(0, 0.1²);
 * - LM head ~ N(0, (3/√H)²): logits of std ≈ 3, so greedy decoding rarely meets a near-tie between the
 *   top two tokens (which would make fp32 parity between engines flaky).
 *
 * Presets listed in `ROUTER_SKEW` (presets.ts) replace the random selection bias with a deterministic
 * Zipf-like one; that needs the config, so pass it where a function takes an optional `config`.
 */

import { ROUTER_SKEW, isPresetName } from './presets.ts';
import { Prng, portableLog } from './prng.ts';
import type { ModelConfig, F32Tensor } from './types.ts';
import { numElements, weightLayout } from './weight-layout.ts';
import type { TensorSpec } from './weight-layout.ts';

export const INIT = {
  normNoiseStd: 0.05,
  biasStd: 0.05,
  routerStdTimesSqrtH: 2,
  selectionBiasStd: 0.1,
  lmHeadStdTimesSqrtH: 3,
} as const;

function initOf(spec: TensorSpec): { readonly mean: number; readonly std: number } {
  const fanIn = spec.shape[spec.shape.length - 1] ?? 1;
  switch (spec.role) {
    case 'embedding':
      return { mean: 0, std: 1 };
    case 'lm_head':
      return { mean: 0, std: INIT.lmHeadStdTimesSqrtH / Math.sqrt(fanIn) };
    case 'router':
      return { mean: 0, std: INIT.routerStdTimesSqrtH / Math.sqrt(fanIn) };
    case 'linear':
      return { mean: 0, std: 1 / Math.sqrt(fanIn) };
    case 'norm':
      return { mean: 1, std: INIT.normNoiseStd };
    case 'bias':
      return { mean: 0, std: INIT.biasStd };
    case 'selection_bias':
      return { mean: 0, std: INIT.selectionBiasStd };
  }
}

/**
 * The selection bias of a preset in ROUTER_SKEW, `-scale × ln(e + 1)` for expert e; undefined for any
 * other tensor or config. Uses the portable log, so the bytes are the same on every machine.
 */
function skewedSelectionBias(spec: TensorSpec, config: ModelConfig | undefined): Float32Array | undefined {
  if (
    config === undefined ||
    spec.role !== 'selection_bias' ||
    config.family !== 'switchyard' ||
    !isPresetName(config.name)
  )
    return undefined;
  const skew = ROUTER_SKEW[config.name];
  if (skew === undefined) return undefined;
  const values = new Float32Array(numElements(spec.shape));
  // 0 − x rather than −x, so expert 0's bias is +0 (not −0, another bit pattern on disk).
  for (let e = 0; e < values.length; e++) values[e] = 0 - skew.zipfBiasScale * portableLog(e + 1);
  return values;
}

/**
 * Two buffers used in turn for chunked generation. A consumer that has finished with a chunk before it
 * asks for the chunk after next (as `writeSafetensors` does) never sees a buffer overwritten early.
 */
export class ChunkBuffers {
  private readonly buffers: readonly [Float32Array, Float32Array];
  private turn = 0;

  constructor(chunkElements = 4 << 20) {
    this.buffers = [new Float32Array(chunkElements), new Float32Array(chunkElements)];
  }

  /** The next buffer, `length` elements long (at most the chunk size). */
  next(length: number): Float32Array {
    const buffer = this.turn === 0 ? this.buffers[0] : this.buffers[1];
    this.turn = 1 - this.turn;
    return buffer.subarray(0, length);
  }

  get chunkElements(): number {
    return this.buffers[0].length;
  }
}

/**
 * One tensor of the random model as a stream of chunks in reused buffers: the same values as
 * `randomTensor`, without allocating (and page-faulting) a fresh array per tensor. Each yielded chunk
 * is valid until the chunk after next is requested.
 */
export function* randomTensorChunks(
  spec: TensorSpec,
  seed: number,
  buffers: ChunkBuffers,
  config?: ModelConfig,
): Generator<Float32Array> {
  const skewed = skewedSelectionBias(spec, config);
  if (skewed !== undefined) {
    const chunk = buffers.next(skewed.length);
    chunk.set(skewed);
    yield chunk;
    return;
  }
  const { mean, std } = initOf(spec);
  const prng = new Prng(seed, spec.name);
  let remaining = numElements(spec.shape);
  while (remaining > 0) {
    const chunk = buffers.next(Math.min(remaining, buffers.chunkElements));
    prng.fillNormal(chunk, mean, std);
    remaining -= chunk.length;
    yield chunk;
  }
}

/** One tensor of the random model, generated from its own (seed, name) stream. */
export function randomTensor(spec: TensorSpec, seed: number, config?: ModelConfig): F32Tensor {
  const skewed = skewedSelectionBias(spec, config);
  if (skewed !== undefined) return { shape: [...spec.shape], data: skewed };
  const data = new Float32Array(numElements(spec.shape));
  const { mean, std } = initOf(spec);
  new Prng(seed, spec.name).fillNormal(data, mean, std);
  return { shape: [...spec.shape], data };
}

/**
 * Every tensor the config requires, generated lazily in model order: a consumer that writes each
 * tensor and drops it holds one tensor in memory at a time.
 */
export function* randomTensors(config: ModelConfig, seed: number): Generator<readonly [string, F32Tensor]> {
  for (const spec of weightLayout(config)) yield [spec.name, randomTensor(spec, seed, config)] as const;
}

/** The whole random model in memory (fine for `tiny` and `small`; `olmoe-slice` is ~3.9 GB of fp32). */
export function randomWeights(config: ModelConfig, seed: number): Map<string, F32Tensor> {
  return new Map(randomTensors(config, seed));
}
