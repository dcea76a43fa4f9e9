/**
 * vLLM's `random` dataset: input and output lengths drawn uniformly from
 * [⌊len × (1 − r)⌋, ⌈len × (1 + r)⌉] (output at least 1), an optional random prefix shared by every
 * prompt, then token ids `(offset + i + j) mod vocab` for request i with a random offset — prompts that
 * differ from the first token on, so no prefix cache helps beyond the shared prefix.
 */

import type { BenchRequest } from '../request-output.ts';
import type { SeededRandom } from '../seeded-random.ts';

export interface RandomDatasetSpec {
  readonly kind: 'random';
  readonly inputLen: number;
  readonly outputLen: number;
  /** r in [0, 1). */
  readonly rangeRatio: number;
  readonly prefixLen: number;
}

export class DatasetSpecError extends Error {
  override readonly name = 'DatasetSpecError';
  readonly code = 'bad_dataset' as const;
}

export interface LengthRange {
  readonly low: number;
  readonly high: number;
}

/** vLLM's sampling interval for a mean length and range ratio (low clamped to `minLow`). */
export function lengthRange(len: number, rangeRatio: number, minLow: number): LengthRange {
  return {
    low: Math.max(minLow, Math.floor(len * (1 - rangeRatio))),
    high: Math.max(minLow, Math.ceil(len * (1 + rangeRatio))),
  };
}

export function randomRequests(
  spec: RandomDatasetSpec,
  numPrompts: number,
  vocabSize: number,
  random: SeededRandom,
): BenchRequest[] {
  if (!(spec.rangeRatio >= 0 && spec.rangeRatio < 1))
    throw new DatasetSpecError(`--random-range-ratio must be in [0, 1), got ${spec.rangeRatio}`);
  const input = lengthRange(spec.inputLen, spec.rangeRatio, 0);
  const output = lengthRange(spec.outputLen, spec.rangeRatio, 1);
  if (spec.prefixLen + input.low < 1)
    throw new DatasetSpecError('--random-input-len is too small: a prompt could be empty');
  const prefix = Array.from({ length: spec.prefixLen }, () => random.integer(0, vocabSize - 1));
  const inputLens = Array.from({ length: numPrompts }, () => random.integer(input.low, input.high));
  const outputLens = Array.from({ length: numPrompts }, () => random.integer(output.low, output.high));
  const offsets = Array.from({ length: numPrompts }, () => random.integer(0, vocabSize - 1));
  return inputLens.map((len, i) => {
    const offset = offsets[i] ?? 0;
    const inner = Array.from({ length: len }, (_, j) => (offset + i + j) % vocabSize);
    return { promptIds: [...prefix, ...inner], outputLen: outputLens[i] ?? 1 };
  });
}
