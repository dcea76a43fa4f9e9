/**
 * Runnable presets (ones we generate random weights for): `tiny` for tests, `small` for the demo,
 * `olmoe-slice` for benchmarks, `skewed` and `skewed-heavy` for load-imbalance benchmarks. Shape-only presets of real
 * models live in `real-models.ts`.
 */

import { validateConfig } from './config.ts';
import { UnknownPresetError } from './errors.ts';
import type { ModelConfig } from './types.ts';

export const PRESET_NAMES = ['tiny', 'small', 'olmoe-slice', 'skewed', 'skewed-heavy'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

/** Byte-level tokenizer: ids 0–255 are bytes, then BOS and EOS. */
export const BYTE_VOCAB_SIZE = 258;
export const BYTE_BOS_TOKEN_ID = 256;
export const BYTE_EOS_TOKEN_ID = 257;

const BYTE_TOKENS = { bosTokenId: BYTE_BOS_TOKEN_ID, eosTokenId: BYTE_EOS_TOKEN_ID } as const;

/** The `skewed` preset's config, also the base of `skewed-heavy`. */
const SKEWED = {
  family: 'switchyard',
  name: 'skewed',
  vocabSize: BYTE_VOCAB_SIZE,
  hiddenSize: 128,
  numLayers: 4,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 32,
  maxContext: 1024,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  numExperts: 16,
  numExpertsPerToken: 2,
  expertFfnSize: 256,
  scoring: 'softmax',
  normTopKProb: true,
  selectionBias: true,
  ...BYTE_TOKENS,
} as const;

const PRESETS: Readonly<Record<PresetName, ModelConfig>> = {
  tiny: validateConfig({
    family: 'switchyard',
    name: 'tiny',
    vocabSize: BYTE_VOCAB_SIZE,
    hiddenSize: 64,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    maxContext: 256,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    numExperts: 8,
    numExpertsPerToken: 2,
    expertFfnSize: 32,
    scoring: 'softmax',
    normTopKProb: true,
    ...BYTE_TOKENS,
  }),
  small: validateConfig({
    family: 'switchyard',
    name: 'small',
    vocabSize: BYTE_VOCAB_SIZE,
    hiddenSize: 512,
    numLayers: 4,
    numHeads: 8,
    numKvHeads: 4,
    headDim: 64,
    maxContext: 2048,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    numExperts: 16,
    numExpertsPerToken: 2,
    expertFfnSize: 1024,
    scoring: 'softmax',
    normTopKProb: true,
    ...BYTE_TOKENS,
  }),
  // OLMoE-1B-7B's layer shapes (hidden 2048, 16×128 heads, 64 experts top-8 of FFN 1024, q/k norm over
  // the whole projection, no renormalisation) with two layers and a 32k vocabulary. The byte tokenizer
  // uses only ids 0–257; the rest of the vocabulary is there to give the LM head its real cost.
  'olmoe-slice': validateConfig({
    family: 'switchyard',
    name: 'olmoe-slice',
    vocabSize: 32000,
    hiddenSize: 2048,
    numLayers: 2,
    numHeads: 16,
    numKvHeads: 16,
    headDim: 128,
    maxContext: 4096,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    qkNorm: 'projection',
    numExperts: 64,
    numExpertsPerToken: 8,
    expertFfnSize: 1024,
    scoring: 'softmax',
    normTopKProb: false,
    ...BYTE_TOKENS,
  }),
  // Between tiny and small, with a DeepSeek-V3-style selection bias that `random-weights.ts` sets to a
  // Zipf-like profile (see ROUTER_SKEW): most tokens go to a few low-numbered experts in every layer,
  // so expert-parallel imbalance shows in benchmarks (and a balancer has something to fix).
  skewed: validateConfig(SKEWED),
  // `skewed` with experts 16× wider (FFN 4096): the same router and skew, but the experts carry the compute,
  // as in a real MoE, so that how they are placed decides how long a step waits for its slowest worker.
  'skewed-heavy': validateConfig({ ...SKEWED, name: 'skewed-heavy', expertFfnSize: 4096 }),
};

/**
 * Presets whose router is deliberately skewed: every layer's selection bias is
 * `-zipfBiasScale × ln(e + 1)` for expert e (the log of Zipf weights 1/(e+1), scaled), instead of
 * random. The bias only chooses experts, so the routed weights stay those of the softmax.
 */
export const ROUTER_SKEW: Readonly<Partial<Record<PresetName, { readonly zipfBiasScale: number }>>> = {
  skewed: { zipfBiasScale: 0.12 },
  'skewed-heavy': { zipfBiasScale: 0.12 },
};

export function isPresetName(name: string): name is PresetName {
  return (PRESET_NAMES as readonly string[]).includes(name);
}

/**
 * A preset's config, optionally with fields overridden (e.g. `{ qkNorm: 'head' }` to exercise a
 * feature on `tiny`). The result is validated again and frozen. Throws `UnknownPresetError` for a name
 * that arrived at run time and is not a preset, `ConfigError` for a bad override.
 */
export function getPreset(name: PresetName, overrides: Partial<ModelConfig> = {}): ModelConfig {
  if (!isPresetName(name)) throw new UnknownPresetError(String(name), PRESET_NAMES);
  const base = PRESETS[name];
  if (Object.keys(overrides).length === 0) return base;
  return validateConfig({ ...base, ...overrides });
}
