/**
 * The datasets a run can draw from, as one tagged union, and the requests each produces. Prompts are
 * token-id arrays (so prompt lengths are exact whatever the server's tokenizer), with ids below
 * `vocabSize`.
 */

import type { BenchRequest } from '../request-output.ts';
import { SeededRandom } from '../seeded-random.ts';
import { randomRequests, type RandomDatasetSpec } from './random.ts';
import { sharedPrefixRequests, type SharedPrefixDatasetSpec } from './shared-prefix.ts';
import { loadTrace, traceRequests, type TraceDatasetSpec } from './trace.ts';

export type DatasetSpec = RandomDatasetSpec | SharedPrefixDatasetSpec | TraceDatasetSpec;
export type DatasetName = DatasetSpec['kind'];
export const DATASET_NAMES: readonly DatasetName[] = ['random', 'shared-prefix', 'trace'];

/**
 * `numPrompts` requests (a trace gives at most its number of good lines, in arrival order). Only the
 * trace's requests carry arrival times.
 */
export async function buildRequests(
  spec: DatasetSpec,
  numPrompts: number,
  vocabSize: number,
  seed: number,
  warn: (line: string) => void,
): Promise<BenchRequest[]> {
  switch (spec.kind) {
    case 'random':
      return randomRequests(spec, numPrompts, vocabSize, new SeededRandom(seed, 'dataset-random'));
    case 'shared-prefix':
      return sharedPrefixRequests(spec, numPrompts, vocabSize, new SeededRandom(seed, 'dataset-shared-prefix'));
    case 'trace':
      return traceRequests(await loadTrace(spec, warn), spec, vocabSize, seed).slice(0, numPrompts);
  }
}

/** A one-line description for reports. */
export function describeDataset(spec: DatasetSpec): string {
  switch (spec.kind) {
    case 'random':
      return `random (input ${spec.inputLen}, output ${spec.outputLen}, range ratio ${spec.rangeRatio}${spec.prefixLen > 0 ? `, prefix ${spec.prefixLen}` : ''})`;
    case 'shared-prefix':
      return `shared-prefix (${spec.numPrefixes} prefixes of ${spec.prefixLen}, suffix ${spec.suffixLen}, output ${spec.outputLen})`;
    case 'trace':
      return `trace ${spec.path} (blocks of ${spec.blockTokens}, length scale ${spec.lengthScale})`;
  }
}
