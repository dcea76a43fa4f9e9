/**
 * Groups of requests sharing a long prefix (a system prompt, a document): `numPrefixes` random prefixes
 * of `prefixLen` tokens, each request one of them plus its own random suffix, in a seeded shuffled
 * order so the groups interleave. This is the traffic prefix caching and KV-aware routing are for
 * (vLLM's `prefix_repetition`, SGLang's `generated-shared-prefix`).
 */

import type { BenchRequest } from '../request-output.ts';
import type { SeededRandom } from '../seeded-random.ts';
import { DatasetSpecError } from './random.ts';

export interface SharedPrefixDatasetSpec {
  readonly kind: 'shared-prefix';
  readonly numPrefixes: number;
  readonly prefixLen: number;
  readonly suffixLen: number;
  readonly outputLen: number;
}

export function sharedPrefixRequests(
  spec: SharedPrefixDatasetSpec,
  numPrompts: number,
  vocabSize: number,
  random: SeededRandom,
): BenchRequest[] {
  if (spec.numPrefixes < 1) throw new DatasetSpecError(`--shared-num-prefixes must be ≥ 1, got ${spec.numPrefixes}`);
  if (spec.prefixLen + spec.suffixLen < 1)
    throw new DatasetSpecError('--shared-prefix-len + --shared-suffix-len must be ≥ 1');
  if (spec.outputLen < 1) throw new DatasetSpecError(`--shared-output-len must be ≥ 1, got ${spec.outputLen}`);
  const tokens = (n: number) => Array.from({ length: n }, () => random.integer(0, vocabSize - 1));
  const prefixes = Array.from({ length: spec.numPrefixes }, () => tokens(spec.prefixLen));
  const requests = Array.from({ length: numPrompts }, (_, i): BenchRequest => ({
    promptIds: [...(prefixes[i % spec.numPrefixes] ?? []), ...tokens(spec.suffixLen)],
    outputLen: spec.outputLen,
  }));
  return random.shuffled(requests);
}
