/**
 * `validateConfig`: the one way a `ModelConfig` comes into existence. It checks every field, fills the
 * defaults, rejects unknown keys (a typo must not silently become a default) and returns a frozen
 * object with the fields in a fixed order, so `JSON.stringify` of a config is stable.
 */

import { ConfigError } from './errors.ts';
import type { ModelConfig, ModelFamily, QkNorm, Scoring } from './types.ts';

const FAMILIES: readonly ModelFamily[] = [
  'switchyard',
  'mixtral',
  'olmoe',
  'qwen2_moe',
  'qwen3_moe',
  'deepseek_v3',
  'gpt_oss',
];
const SCORINGS: readonly Scoring[] = ['softmax', 'sigmoid'];
const QK_NORMS: readonly QkNorm[] = ['none', 'projection', 'head'];

/**
 * Model names appear in API responses, KV hash namespaces and NATS subjects, so they are restricted to
 * letters, digits, `.`, `_` and `-`. NOTE: `.` is allowed (e.g. `Qwen1.5-MoE-A2.7B`) although it separates
 * NATS subject tokens; the cluster package must escape it when it builds a subject.
 */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Every field of ModelConfig, in the order a validated config lists them. */
const FIELD_ORDER: readonly (keyof ModelConfig)[] = [
  'family',
  'name',
  'vocabSize',
  'hiddenSize',
  'numLayers',
  'numHeads',
  'numKvHeads',
  'headDim',
  'maxContext',
  'rmsNormEps',
  'ropeTheta',
  'attentionBias',
  'qkNorm',
  'numExperts',
  'numExpertsPerToken',
  'expertFfnSize',
  'scoring',
  'normTopKProb',
  'routedScalingFactor',
  'selectionBias',
  'sharedExpertFfnSize',
  'sharedExpertGate',
  'tieWordEmbeddings',
  'bosTokenId',
  'eosTokenId',
];

/** Defaults for the fields a raw config may omit. The rest are required. */
const DEFAULTS = {
  family: 'switchyard',
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  attentionBias: false,
  qkNorm: 'none',
  scoring: 'softmax',
  normTopKProb: true,
  routedScalingFactor: 1,
  selectionBias: false,
  sharedExpertFfnSize: 0,
  sharedExpertGate: false,
  tieWordEmbeddings: false,
} as const satisfies Partial<ModelConfig>;

type Raw = Readonly<Record<string, unknown>>;

function field(name: string): string {
  return `config.${name}`;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function read(raw: Raw, name: keyof ModelConfig): unknown {
  const value = raw[name];
  if (value !== undefined) return value;
  if (name in DEFAULTS) return DEFAULTS[name as keyof typeof DEFAULTS];
  throw new ConfigError(field(name), 'is required');
}

function positiveInt(raw: Raw, name: keyof ModelConfig): number {
  const value = read(raw, name);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ConfigError(field(name), `${describe(value)} is not a positive integer`);
  }
  return value;
}

function nonNegativeInt(raw: Raw, name: keyof ModelConfig): number {
  const value = read(raw, name);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ConfigError(field(name), `${describe(value)} is not a non-negative integer`);
  }
  return value;
}

function positiveNumber(raw: Raw, name: keyof ModelConfig): number {
  const value = read(raw, name);
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(field(name), `${describe(value)} is not a positive finite number`);
  }
  return value;
}

function bool(raw: Raw, name: keyof ModelConfig): boolean {
  const value = read(raw, name);
  if (typeof value !== 'boolean') throw new ConfigError(field(name), `${describe(value)} is not a boolean`);
  return value;
}

function oneOf<T extends string>(raw: Raw, name: keyof ModelConfig, allowed: readonly T[]): T {
  const value = read(raw, name);
  const match = allowed.find((option) => option === value);
  if (match === undefined) {
    throw new ConfigError(field(name), `${describe(value)} is not one of ${allowed.join(', ')}`);
  }
  return match;
}

function modelName(raw: Raw): string {
  const value = read(raw, 'name');
  if (typeof value !== 'string' || !NAME_PATTERN.test(value)) {
    throw new ConfigError(
      field('name'),
      `${describe(value)} must be 1–128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit`,
    );
  }
  return value;
}

function tokenId(raw: Raw, name: 'bosTokenId' | 'eosTokenId', vocabSize: number): number {
  const id = nonNegativeInt(raw, name);
  if (id >= vocabSize) throw new ConfigError(field(name), `${id} is outside the vocabulary [0, ${vocabSize})`);
  return id;
}

function checkConsistency(c: ModelConfig): void {
  if (c.numHeads % c.numKvHeads !== 0) {
    throw new ConfigError(field('numKvHeads'), `${c.numKvHeads} does not divide numHeads ${c.numHeads}`);
  }
  if (c.headDim % 2 !== 0) {
    throw new ConfigError(field('headDim'), `${c.headDim} is odd; rotary embeddings rotate pairs of dimensions`);
  }
  if (c.numExpertsPerToken > c.numExperts) {
    throw new ConfigError(field('numExpertsPerToken'), `${c.numExpertsPerToken} exceeds numExperts ${c.numExperts}`);
  }
  if (c.sharedExpertGate && c.sharedExpertFfnSize === 0) {
    throw new ConfigError(field('sharedExpertGate'), 'is true but sharedExpertFfnSize is 0 (no shared expert to gate)');
  }
}

/**
 * Checks a raw config (parsed JSON, a preset with overrides, an import's mapping) and returns a frozen,
 * fully defaulted `ModelConfig`. Throws `ConfigError` naming the first bad field and why.
 */
export function validateConfig(raw: unknown): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError('config', 'must be a JSON object');
  }
  const input = raw as Raw;
  const unknownKey = Object.keys(input).find((key) => !(FIELD_ORDER as readonly string[]).includes(key));
  if (unknownKey !== undefined) throw new ConfigError(field(unknownKey), 'is not a model config field');

  const vocabSize = positiveInt(input, 'vocabSize');
  const config: ModelConfig = {
    family: oneOf(input, 'family', FAMILIES),
    name: modelName(input),
    vocabSize,
    hiddenSize: positiveInt(input, 'hiddenSize'),
    numLayers: positiveInt(input, 'numLayers'),
    numHeads: positiveInt(input, 'numHeads'),
    numKvHeads: positiveInt(input, 'numKvHeads'),
    headDim: positiveInt(input, 'headDim'),
    maxContext: positiveInt(input, 'maxContext'),
    rmsNormEps: positiveNumber(input, 'rmsNormEps'),
    ropeTheta: positiveNumber(input, 'ropeTheta'),
    attentionBias: bool(input, 'attentionBias'),
    qkNorm: oneOf(input, 'qkNorm', QK_NORMS),
    numExperts: positiveInt(input, 'numExperts'),
    numExpertsPerToken: positiveInt(input, 'numExpertsPerToken'),
    expertFfnSize: positiveInt(input, 'expertFfnSize'),
    scoring: oneOf(input, 'scoring', SCORINGS),
    normTopKProb: bool(input, 'normTopKProb'),
    routedScalingFactor: positiveNumber(input, 'routedScalingFactor'),
    selectionBias: bool(input, 'selectionBias'),
    sharedExpertFfnSize: nonNegativeInt(input, 'sharedExpertFfnSize'),
    sharedExpertGate: bool(input, 'sharedExpertGate'),
    tieWordEmbeddings: bool(input, 'tieWordEmbeddings'),
    bosTokenId: tokenId(input, 'bosTokenId', vocabSize),
    eosTokenId: tokenId(input, 'eosTokenId', vocabSize),
  };
  checkConsistency(config);
  return Object.freeze(config);
}

/** The config as a plain JSON-ready object with keys in the canonical order (stable serialisation). */
export function configToJson(config: ModelConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of FIELD_ORDER) out[key] = config[key];
  return out;
}
