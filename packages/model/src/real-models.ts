/**
 * Shape-only presets of real MoE models, with the parameter counts their publishers give. They feed the
 * cost model and the capacity planner; there are no weights for them.
 *
 * Publishers count "active" parameters differently, so each preset records what its figure includes;
 * compare our count against it with `comparableActiveParams` (params.ts), never against a raw total.
 */

import { UnknownPresetError } from './errors.ts';
import type { ShapeSpec } from './shape-spec.ts';

export interface PublishedParams {
  readonly totalParams: number;
  readonly activeParams: number;
  /** The published active figure counts the input embedding matrix. */
  readonly activeIncludesEmbedding: boolean;
  /** The published active figure counts the LM head (unembedding) matrix. */
  readonly activeIncludesLmHead: boolean;
  /** Where the figures and the convention come from. */
  readonly source: string;
}

export interface RealModel {
  readonly shape: ShapeSpec;
  readonly published: PublishedParams;
}

const NO_EXTRAS = {
  numDenseLayers: 0,
  denseFfnSize: 0,
  expertBias: false,
  routerBias: false,
  selectionBias: false,
  sharedExpertFfnSize: 0,
  sharedExpertGate: false,
  tieWordEmbeddings: false,
} as const;

const GQA_PLAIN = { kind: 'gqa', qkvBias: false, outputBias: false, qkNorm: 'none', sinks: false } as const;

export const REAL_MODELS = {
  'mixtral-8x7b': {
    shape: {
      ...NO_EXTRAS,
      name: 'mixtral-8x7b',
      vocabSize: 32000,
      hiddenSize: 4096,
      numLayers: 32,
      attention: { ...GQA_PLAIN, numHeads: 32, numKvHeads: 8, headDim: 128 },
      numExperts: 8,
      numExpertsPerToken: 2,
      expertFfnSize: 14336,
    },
    // 12.9B is reached only with both the embedding and the LM head counted (without the head: 12.75B).
    published: {
      totalParams: 46.7e9,
      activeParams: 12.9e9,
      activeIncludesEmbedding: true,
      activeIncludesLmHead: true,
      source: 'Mistral AI, "Mixtral of experts" (2024)',
    },
  },
  'olmoe-1b-7b': {
    shape: {
      ...NO_EXTRAS,
      name: 'olmoe-1b-7b',
      vocabSize: 50304,
      hiddenSize: 2048,
      numLayers: 16,
      attention: { ...GQA_PLAIN, qkNorm: 'projection', numHeads: 16, numKvHeads: 16, headDim: 128 },
      numExperts: 64,
      numExpertsPerToken: 8,
      expertFfnSize: 1024,
    },
    published: {
      totalParams: 6.9e9,
      activeParams: 1.3e9,
      activeIncludesEmbedding: true,
      activeIncludesLmHead: true,
      source: 'Muennighoff et al., "OLMoE: Open Mixture-of-Experts Language Models" (2024)',
    },
  },
  'qwen3-30b-a3b': {
    shape: {
      ...NO_EXTRAS,
      name: 'qwen3-30b-a3b',
      vocabSize: 151936,
      hiddenSize: 2048,
      numLayers: 48,
      attention: { ...GQA_PLAIN, qkNorm: 'head', numHeads: 32, numKvHeads: 4, headDim: 128 },
      numExperts: 128,
      numExpertsPerToken: 8,
      expertFfnSize: 768,
    },
    published: {
      totalParams: 30.5e9,
      activeParams: 3.3e9,
      activeIncludesEmbedding: true,
      activeIncludesLmHead: true,
      source: 'Qwen team, Qwen3-30B-A3B model card (2025)',
    },
  },
  'deepseek-v3': {
    shape: {
      ...NO_EXTRAS,
      name: 'deepseek-v3',
      vocabSize: 129280,
      hiddenSize: 7168,
      numLayers: 61,
      attention: {
        kind: 'mla',
        numHeads: 128,
        qLoraRank: 1536,
        kvLoraRank: 512,
        qkNopeHeadDim: 128,
        qkRopeHeadDim: 64,
        vHeadDim: 128,
      },
      numDenseLayers: 3,
      denseFfnSize: 18432,
      numExperts: 256,
      numExpertsPerToken: 8,
      expertFfnSize: 2048,
      selectionBias: true,
      sharedExpertFfnSize: 2048,
    },
    // Main model only (the 14B multi-token-prediction module is excluded from 671B). README_WEIGHTS.md
    // states the active figure includes the 0.9B embedding and the 0.9B output head; it gives it there
    // as 36.7B, the report's headline as 37B. Our count (37.55B) is 1.5% above 37B.
    published: {
      totalParams: 671e9,
      activeParams: 37e9,
      activeIncludesEmbedding: true,
      activeIncludesLmHead: true,
      source: 'DeepSeek-AI, "DeepSeek-V3 Technical Report" (2024) and README_WEIGHTS.md',
    },
  },
  'gpt-oss-120b': {
    shape: {
      ...NO_EXTRAS,
      name: 'gpt-oss-120b',
      vocabSize: 201088,
      hiddenSize: 2880,
      numLayers: 36,
      attention: {
        kind: 'gqa',
        numHeads: 64,
        numKvHeads: 8,
        headDim: 64,
        qkvBias: true,
        outputBias: true,
        qkNorm: 'none',
        sinks: true,
      },
      numExperts: 128,
      numExpertsPerToken: 4,
      expertFfnSize: 2880,
      expertBias: true,
      routerBias: true,
    },
    // The model card counts the unembedding but not the embedding in the active figure.
    published: {
      totalParams: 116.8e9,
      activeParams: 5.1e9,
      activeIncludesEmbedding: false,
      activeIncludesLmHead: true,
      source: 'OpenAI, "gpt-oss-120b & gpt-oss-20b Model Card" (2025)',
    },
  },
} as const satisfies Readonly<Record<string, RealModel>>;

export type RealModelName = keyof typeof REAL_MODELS;
export const REAL_MODEL_NAMES = Object.keys(REAL_MODELS) as readonly RealModelName[];

export function isRealModelName(name: string): name is RealModelName {
  return Object.hasOwn(REAL_MODELS, name);
}

/** A real model's shapes and published counts. Throws `UnknownPresetError` for an unknown name. */
export function getRealModel(name: string): RealModel {
  if (!isRealModelName(name)) throw new UnknownPresetError(name, REAL_MODEL_NAMES);
  return REAL_MODELS[name];
}
