import { describe, expect, it } from 'vitest';
import { ConfigError, UnknownPresetError } from '../src/errors.ts';
import { getPreset, isPresetName, PRESET_NAMES, ROUTER_SKEW } from '../src/presets.ts';
import type { PresetName } from '../src/presets.ts';

describe('presets', () => {
  it('tiny is the small test model with a byte vocabulary', () => {
    expect(getPreset('tiny')).toEqual({
      family: 'switchyard',
      name: 'tiny',
      vocabSize: 258,
      hiddenSize: 64,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      maxContext: 256,
      rmsNormEps: 1e-5,
      ropeTheta: 10000,
      attentionBias: false,
      qkNorm: 'none',
      numExperts: 8,
      numExpertsPerToken: 2,
      expertFfnSize: 32,
      scoring: 'softmax',
      normTopKProb: true,
      routedScalingFactor: 1,
      selectionBias: false,
      sharedExpertFfnSize: 0,
      sharedExpertGate: false,
      tieWordEmbeddings: false,
      bosTokenId: 256,
      eosTokenId: 257,
    });
  });

  it('skewed-heavy is skewed with experts 16× wider, and the same router skew', () => {
    const { name, expertFfnSize, ...rest } = getPreset('skewed-heavy');
    const { name: baseName, expertFfnSize: baseFfn, ...base } = getPreset('skewed');
    expect([name, expertFfnSize, baseName, baseFfn]).toEqual(['skewed-heavy', 4096, 'skewed', 256]);
    expect(rest).toEqual(base);
    expect(ROUTER_SKEW['skewed-heavy']).toEqual(ROUTER_SKEW.skewed);
  });

  it('small is the demo model', () => {
    expect(getPreset('small')).toMatchObject({
      hiddenSize: 512,
      numLayers: 4,
      numHeads: 8,
      numKvHeads: 4,
      headDim: 64,
      numExperts: 16,
      numExpertsPerToken: 2,
      expertFfnSize: 1024,
      vocabSize: 258,
      maxContext: 2048,
      normTopKProb: true,
    });
  });

  it('olmoe-slice has OLMoE-1B-7B layer shapes, no renormalisation and projection-wide q/k norms', () => {
    expect(getPreset('olmoe-slice')).toMatchObject({
      hiddenSize: 2048,
      numHeads: 16,
      numKvHeads: 16,
      headDim: 128,
      numExperts: 64,
      numExpertsPerToken: 8,
      expertFfnSize: 1024,
      scoring: 'softmax',
      normTopKProb: false,
      qkNorm: 'projection',
      numLayers: 2,
      vocabSize: 32000,
      maxContext: 4096,
    });
  });

  it('applies overrides, validates them and freezes the result', () => {
    const config = getPreset('tiny', { qkNorm: 'head', attentionBias: true });
    expect(config.qkNorm).toBe('head');
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => getPreset('tiny', { numExpertsPerToken: 9 })).toThrow(ConfigError);
  });

  it('every preset is frozen and a run-time unknown name is a typed error', () => {
    for (const name of PRESET_NAMES) expect(Object.isFrozen(getPreset(name))).toBe(true);
    expect(isPresetName('medium')).toBe(false);
    expect(() => getPreset('medium' as PresetName)).toThrow(UnknownPresetError);
  });
});
