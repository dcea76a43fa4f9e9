import { describe, expect, it } from 'vitest';
import {
  comparableActiveParams,
  countConfigParams,
  countParams,
  expertSizeBytes,
  sumBreakdown,
  swigluSizeBytes,
  weightsSizeBytes,
} from '../src/params.ts';
import { getPreset } from '../src/presets.ts';
import { getRealModel, REAL_MODEL_NAMES, REAL_MODELS } from '../src/real-models.ts';
import { randomWeights } from '../src/random-weights.ts';

describe('real-model presets', () => {
  it('cover the five models the cost model plans for', () => {
    expect([...REAL_MODEL_NAMES]).toEqual([
      'mixtral-8x7b',
      'olmoe-1b-7b',
      'qwen3-30b-a3b',
      'deepseek-v3',
      'gpt-oss-120b',
    ]);
  });

  for (const name of REAL_MODEL_NAMES) {
    it(`${name}: total and active parameters are within 2% of the published figures (like with like)`, () => {
      const { shape, published } = REAL_MODELS[name];
      const counts = countParams(shape);
      expect(Math.abs(counts.totalParams / published.totalParams - 1)).toBeLessThan(0.02);
      expect(Math.abs(comparableActiveParams(counts, published) / published.activeParams - 1)).toBeLessThan(0.02);
    });
  }

  it('gpt-oss counts the unembedding but not the embedding; the others count both', () => {
    const gptOss = getRealModel('gpt-oss-120b');
    expect(gptOss.published).toMatchObject({ activeIncludesEmbedding: false, activeIncludesLmHead: true });
    const counts = countParams(gptOss.shape);
    expect(comparableActiveParams(counts, gptOss.published)).toBe(
      counts.activeParamsPerToken - counts.activePerToken.embedding,
    );
    for (const name of ['mixtral-8x7b', 'olmoe-1b-7b', 'qwen3-30b-a3b', 'deepseek-v3'] as const) {
      expect(REAL_MODELS[name].published).toMatchObject({ activeIncludesEmbedding: true, activeIncludesLmHead: true });
    }
  });

  it('counts DeepSeek-V3 with MLA, three dense layers and one shared expert', () => {
    const counts = countParams(getRealModel('deepseek-v3').shape);
    // MLA per layer: q_a 7168·1536 + 1536 (norm) + q_b 1536·128·192 + kv_a 7168·576 + 512 (norm) + kv_b 512·128·256 + o 16384·7168.
    expect(counts.total.attention).toBe(61 * 187_107_328);
    expect(counts.total.denseFfn).toBe(3 * 3 * 7168 * 18432);
    expect(counts.activePerToken.routedExperts).toBe(58 * 8 * 3 * 7168 * 2048);
    expect(counts.activePerToken.sharedExperts).toBe(58 * 3 * 7168 * 2048);
    expect(counts.total.router).toBe(58 * (256 * 7168 + 256));
  });

  it('throws a typed error for an unknown real model', () => {
    expect(() => getRealModel('llama')).toThrow(/unknown model preset "llama"/);
  });
});

describe('countConfigParams', () => {
  it('counts exactly the parameters randomWeights generates', () => {
    for (const config of [
      getPreset('tiny'),
      getPreset('tiny', {
        attentionBias: true,
        qkNorm: 'projection',
        sharedExpertFfnSize: 16,
        sharedExpertGate: true,
        selectionBias: true,
      }),
      getPreset('tiny', { qkNorm: 'head', tieWordEmbeddings: true }),
    ]) {
      let generated = 0;
      for (const t of randomWeights(config, 0).values()) generated += t.data.length;
      expect(countConfigParams(config).totalParams).toBe(generated);
    }
  });

  it('breaks tiny down per token', () => {
    const counts = countConfigParams(getPreset('tiny'));
    const h = 64;
    const attention = 2 * (64 * h + 32 * h + 32 * h + h * 64);
    const expert = 3 * h * 32;
    expect(counts.activePerToken).toEqual({
      embedding: 258 * h,
      attention,
      router: 2 * 8 * h,
      routedExperts: 2 * 2 * expert,
      sharedExperts: 0,
      denseFfn: 0,
      norms: 2 * 2 * h + h,
      lmHead: 258 * h,
    });
    expect(counts.activeParamsPerToken).toBe(sumBreakdown(counts.activePerToken));
    expect(counts.total.routedExperts).toBe(2 * 8 * expert);
    // Matmul set: attention projections + router + chosen experts + LM head; no embedding, no norms.
    expect(counts.matmulParamsPerToken).toBe(attention + 2 * 8 * h + 2 * 2 * expert + 258 * h);
  });

  it('keeps the LM head in the matmul set when embeddings are tied, but counts its parameters once', () => {
    const tied = countConfigParams(getPreset('tiny', { tieWordEmbeddings: true }));
    const untied = countConfigParams(getPreset('tiny'));
    expect(tied.total.lmHead).toBe(0);
    expect(tied.totalParams).toBe(untied.totalParams - 258 * 64);
    expect(tied.matmulParamsPerToken).toBe(untied.matmulParamsPerToken);
  });

  it('olmoe-slice has about 0.97 B parameters, 0.27 B active per token', () => {
    const counts = countConfigParams(getPreset('olmoe-slice'));
    expect(counts.totalParams).toBe(970_213_376);
    expect(counts.activeParamsPerToken).toBe(265_570_304);
  });
});

describe('expert bytes', () => {
  it('int8 stores one byte per weight plus one fp32 scale per output channel', () => {
    expect(swigluSizeBytes(64, 32, 'f32')).toBe(4 * 3 * 64 * 32);
    expect(swigluSizeBytes(64, 32, 'int8')).toBe(3 * 64 * 32 + 4 * (32 + 32 + 64));
    const slice = getPreset('olmoe-slice');
    expect(expertSizeBytes(slice, 'f32')).toBe(25_165_824);
    expect(expertSizeBytes(slice, 'int8')).toBe(6_291_456 + 4 * 4096);
  });

  it('model size swaps only the routed experts to int8', () => {
    const slice = getPreset('olmoe-slice');
    const saved = 2 * 64 * (expertSizeBytes(slice, 'f32') - expertSizeBytes(slice, 'int8'));
    expect(weightsSizeBytes(slice, 'f32') - weightsSizeBytes(slice, 'int8')).toBe(saved);
    expect(weightsSizeBytes(slice, 'f32')).toBe(4 * countConfigParams(slice).totalParams);
  });
});
