import { describe, expect, it } from 'vitest';
import { getPreset, shapeOfConfig } from '@switchyard/model';
import {
  costPerMillionTokensUsd,
  presetEconomics,
  shapeEconomics,
  throughputOf,
  EconomicsError,
} from '../src/cost-model.ts';

const options = {
  deviceHourUsd: 2.5,
  throughput: throughputOf(1000),
  expertFormat: 'f32',
  contextTokens: 2048,
  prefixHitRate: 0,
} as const;

describe('cost model from shapes', () => {
  it.each([
    ['mixtral-8x7b', 12.9 / 46.7],
    ['deepseek-v3', 37 / 671],
  ])('gives %s an active ÷ total ratio within 2%% of the published one', (name, published) => {
    const e = presetEconomics(name, options);
    expect(Math.abs(e.activeFraction / published - 1)).toBeLessThan(0.02);
    expect(e.published?.activeFraction).toBeCloseTo(published, 12);
  });

  it('prices a million tokens at price per device-second ÷ rate', () => {
    expect(costPerMillionTokensUsd(2.5, 1000)).toBeCloseTo((2.5 / 3600) * 1000, 12);
    const e = presetEconomics('deepseek-v3', { ...options, throughput: throughputOf(1000, 4000, 500) });
    expect(e.costPerMillionInputUsd).toBeCloseTo(costPerMillionTokensUsd(2.5, 4000), 12);
    expect(e.costPerMillionOutputUsd).toBeCloseTo(costPerMillionTokensUsd(2.5, 500), 12);
    expect(() => costPerMillionTokensUsd(2.5, 0)).toThrow(EconomicsError);
  });

  it('counts MoE sparsity, int8 experts and prefix-cache hits as savings with the right sign', () => {
    const fp32 = presetEconomics('mixtral-8x7b', { ...options, prefixHitRate: 0.5 });
    expect(fp32.denseEquivalentFlopsPerOutputToken).toBeGreaterThan(fp32.flopsPerOutputToken);
    expect(fp32.savings.moeSparsity.flopsFraction).toBeGreaterThan(0.6);
    expect(fp32.savings.int8Experts).toMatchObject({ applied: false });
    expect(fp32.savings.int8Experts.memoryBoundSpeedup).toBeGreaterThan(2);
    // Measured fp32: int8 would cost cost ÷ speed-up.
    const s = fp32.savings.int8Experts.memoryBoundSpeedup;
    expect(fp32.savings.int8Experts.usdPerMillionOutput).toBeCloseTo(fp32.costPerMillionOutputUsd * (1 - 1 / s), 12);
    const int8 = presetEconomics('mixtral-8x7b', { ...options, expertFormat: 'int8' });
    expect(int8.savings.int8Experts.usdPerMillionOutput).toBeCloseTo(int8.costPerMillionOutputUsd * (s - 1), 12);
    // Half the prompt cached saves a little under half the prefill: early positions attend to less.
    expect(fp32.savings.prefixCache.prefillFlopsFraction).toBeLessThan(0.5);
    expect(fp32.savings.prefixCache.prefillFlopsFraction).toBeGreaterThan(0.45);
  });

  it('works on a runnable config through its shape', () => {
    const e = shapeEconomics(shapeOfConfig(getPreset('olmoe-slice')), options);
    expect(e.activeFraction).toBeGreaterThan(0);
    expect(e.activeFraction).toBeLessThan(1);
  });
});
