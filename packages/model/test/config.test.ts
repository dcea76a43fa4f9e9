import { describe, expect, it } from 'vitest';
import { configToJson, validateConfig } from '../src/config.ts';
import { ConfigError } from '../src/errors.ts';
import { getPreset } from '../src/presets.ts';

const minimal = {
  name: 'm',
  vocabSize: 10,
  hiddenSize: 8,
  numLayers: 1,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 4,
  maxContext: 16,
  numExperts: 4,
  numExpertsPerToken: 2,
  expertFfnSize: 8,
  bosTokenId: 0,
  eosTokenId: 1,
};

function errorOf(raw: unknown): ConfigError {
  try {
    validateConfig(raw);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('validateConfig', () => {
  it('fills the defaults and returns a frozen config', () => {
    const config = validateConfig(minimal);
    expect(config).toMatchObject({
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
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names the field and the reason', () => {
    expect(errorOf({ ...minimal, numKvHeads: 3, numHeads: 8 }).message).toBe(
      'config.numKvHeads: 3 does not divide numHeads 8',
    );
    expect(errorOf({ ...minimal, numExpertsPerToken: 5 }).message).toBe(
      'config.numExpertsPerToken: 5 exceeds numExperts 4',
    );
    expect(errorOf({ ...minimal, hiddenSize: 0 }).field).toBe('config.hiddenSize');
    expect(errorOf({ ...minimal, hiddenSize: 2.5 }).message).toBe('config.hiddenSize: 2.5 is not a positive integer');
    expect(errorOf({ ...minimal, scoring: 'relu' }).message).toBe(
      'config.scoring: "relu" is not one of softmax, sigmoid',
    );
    expect(errorOf({ ...minimal, eosTokenId: 10 }).message).toBe(
      'config.eosTokenId: 10 is outside the vocabulary [0, 10)',
    );
    expect(errorOf({ ...minimal, headDim: 3 }).field).toBe('config.headDim');
    expect(errorOf({ ...minimal, sharedExpertGate: true }).field).toBe('config.sharedExpertGate');
    expect(errorOf({ ...minimal, name: 'a b' }).field).toBe('config.name');
    expect(errorOf({ ...minimal, rmsNormEps: -1 }).field).toBe('config.rmsNormEps');
  });

  it('requires the fields without defaults and rejects unknown ones', () => {
    const { vocabSize: _omitted, ...withoutVocab } = minimal;
    expect(errorOf(withoutVocab).message).toBe('config.vocabSize: is required');
    expect(errorOf({ ...minimal, numExpert: 4 }).message).toBe('config.numExpert: is not a model config field');
    expect(errorOf([]).field).toBe('config');
    expect(errorOf(null).code).toBe('MODEL_CONFIG_INVALID');
  });

  it('round-trips through its JSON form with keys in a fixed order', () => {
    const config = getPreset('olmoe-slice');
    const json = configToJson(config);
    expect(validateConfig(JSON.parse(JSON.stringify(json)))).toEqual(config);
    expect(Object.keys(json)[0]).toBe('family');
    expect(Object.keys(json).at(-1)).toBe('eosTokenId');
  });
});
