import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCheckpoint } from '../src/checkpoint.ts';
import { bf16ToF32, f32ToBf16 } from '../src/dtype.ts';
import { ConfigError, MissingTensorError, TensorShapeError, UnknownArchitectureError } from '../src/errors.ts';
import { writeHfCheckpoint } from '../src/hf-export.ts';
import type { HfFamily } from '../src/hf-families.ts';
import { configFromHf, importHfCheckpoint, modelNameFromDir } from '../src/hf-import.ts';
import { loadModelDir } from '../src/model-dir.ts';
import { countConfigParams, countParams } from '../src/params.ts';
import { getPreset } from '../src/presets.ts';
import { randomWeights } from '../src/random-weights.ts';
import { REAL_MODELS } from '../src/real-models.ts';
import { writeSafetensors } from '../src/safetensors-writer.ts';
import type { F32Tensor, ModelConfig } from '../src/types.ts';
import { useTempDirs } from './helpers.ts';

const tempDir = useTempDirs();

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
  }
  throw new Error('expected a rejection');
}

/** A tiny config of each family, exercising that family's features. */
const SOURCES: Readonly<Record<HfFamily, ModelConfig>> = {
  mixtral: getPreset('tiny', { family: 'mixtral', ropeTheta: 1e6 }),
  olmoe: getPreset('tiny', { family: 'olmoe', qkNorm: 'projection', normTopKProb: false }),
  qwen2_moe: getPreset('tiny', {
    family: 'qwen2_moe',
    attentionBias: true,
    sharedExpertFfnSize: 48,
    sharedExpertGate: true,
    normTopKProb: false,
    rmsNormEps: 1e-6,
  }),
  // head_dim 32 with 4 heads: the projections are wider than the hidden size, as in Qwen3.
  qwen3_moe: getPreset('tiny', { family: 'qwen3_moe', qkNorm: 'head', headDim: 32, tieWordEmbeddings: true }),
};

const CASES: readonly { family: HfFamily; dtype: 'f32' | 'bf16'; sharded: boolean }[] = [
  { family: 'mixtral', dtype: 'f32', sharded: false },
  { family: 'olmoe', dtype: 'bf16', sharded: true },
  { family: 'qwen2_moe', dtype: 'f32', sharded: true },
  { family: 'qwen3_moe', dtype: 'bf16', sharded: false },
];

const asBf16 = (t: F32Tensor): F32Tensor => ({ shape: t.shape, data: bf16ToF32(f32ToBf16(t.data)) });

describe('HF checkpoint import', () => {
  for (const { family, dtype, sharded } of CASES) {
    it(`round-trips ${family} (${dtype}, ${sharded ? 'sharded' : 'single file'}): same config and tensors`, async () => {
      const [src, dst] = [await tempDir(), await tempDir()];
      const config = SOURCES[family];
      const weights = randomWeights(config, 21);
      await writeHfCheckpoint(src, family, config, weights, { dtype, sharded, tokenizerJson: '{"model":{}}' });
      expect((await readdir(src)).includes('model.safetensors.index.json')).toBe(sharded);

      const imported = await importHfCheckpoint(src, dst, { name: 'tiny' });
      expect(imported.config).toEqual(config);
      expect(imported.ignoredTensors).toEqual([]);
      const loaded = await loadModelDir(dst, { verifyDigest: true });
      expect(loaded.config).toEqual(config);
      expect(loaded.weightsDigest).toBe(imported.weightsDigest);
      expect(loaded.weights).toEqual(dtype === 'f32' ? weights : new Map([...weights].map(([n, t]) => [n, asBf16(t)])));
      expect(await readFile(join(dst, 'tokenizer.json'), 'utf8')).toBe('{"model":{}}');
      expect(loaded.tokenizerPath).toBe(join(dst, 'tokenizer.json'));
    });
  }

  it('writes Mixtral tensors under block_sparse_moe with w1 = gate, w3 = up, w2 = down', async () => {
    const src = await tempDir();
    const config = SOURCES.mixtral;
    const weights = randomWeights(config, 2);
    await writeHfCheckpoint(src, 'mixtral', config, weights);
    const reader = await openCheckpoint(src);
    expect(reader.tensorNames).toContain('model.layers.0.block_sparse_moe.gate.weight');
    expect(reader.tensorNames.some((n) => n.includes('.mlp.'))).toBe(false);
    const w1 = await reader.readF32('model.layers.1.block_sparse_moe.experts.5.w1.weight');
    const w3 = await reader.readF32('model.layers.1.block_sparse_moe.experts.5.w3.weight');
    const w2 = await reader.readF32('model.layers.1.block_sparse_moe.experts.5.w2.weight');
    expect(w1.data).toEqual(weights.get('model.layers.1.mlp.experts.5.gate_proj.weight')?.data);
    expect(w3.data).toEqual(weights.get('model.layers.1.mlp.experts.5.up_proj.weight')?.data);
    expect(w2.data).toEqual(weights.get('model.layers.1.mlp.experts.5.down_proj.weight')?.data);
    await reader.close();
    const hf = JSON.parse(await readFile(join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(hf).toMatchObject({
      architectures: ['MixtralForCausalLM'],
      num_local_experts: 8,
      intermediate_size: 32,
      head_dim: 16,
    });
  });

  it('names an unknown architecture', async () => {
    const [src, dst] = [await tempDir(), await tempDir()];
    await writeFile(
      join(src, 'config.json'),
      JSON.stringify({ architectures: ['LlamaForCausalLM'], model_type: 'llama' }),
    );
    const error = await errorOf(importHfCheckpoint(src, dst));
    expect(error).toBeInstanceOf(UnknownArchitectureError);
    expect(error.message).toMatch(
      /^unsupported Hugging Face architecture "LlamaForCausalLM" \(supported: MixtralForCausalLM, OlmoeForCausalLM, Qwen2MoeForCausalLM, Qwen3MoeForCausalLM\)$/,
    );
  });

  it('names a missing tensor by its HF name, and writes nothing', async () => {
    const [src, dst] = [await tempDir(), await tempDir()];
    const config = SOURCES.mixtral;
    // Export requires every tensor, so write the full model, then rewrite the file without one tensor.
    await writeHfCheckpoint(src, 'mixtral', config, randomWeights(config, 2));
    const reader = await openCheckpoint(src);
    const kept = await Promise.all(
      reader.tensorNames
        .filter((n) => n !== 'model.layers.1.block_sparse_moe.experts.3.w2.weight')
        .map(async (name) => ({
          name,
          dtype: 'f32' as const,
          shape: reader.info(name)?.shape ?? [],
          data: (await reader.readF32(name)).data,
        })),
    );
    await reader.close();
    await rm(join(src, 'model.safetensors'));
    await writeSafetensors(join(src, 'model.safetensors'), kept);
    const error = await errorOf(importHfCheckpoint(src, dst));
    expect(error).toBeInstanceOf(MissingTensorError);
    expect(error.message).toBe(`missing tensor "model.layers.1.block_sparse_moe.experts.3.w2.weight" in ${src}`);
    expect(await readdir(dst)).toEqual([]);
  });

  it('names both shapes when the HF config and the tensors disagree', async () => {
    const [src, dst] = [await tempDir(), await tempDir()];
    const config = SOURCES.olmoe;
    await writeHfCheckpoint(src, 'olmoe', config, randomWeights(config, 2));
    const hf = JSON.parse(await readFile(join(src, 'config.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(join(src, 'config.json'), JSON.stringify({ ...hf, intermediate_size: 16 }));
    const error = await errorOf(importHfCheckpoint(src, dst));
    expect(error).toBeInstanceOf(TensorShapeError);
    expect(error.message).toBe(
      'tensor "model.layers.0.mlp.experts.0.gate_proj.weight" has shape [32, 64], expected [16, 64]',
    );
  });

  it('refuses a source that is also the destination', async () => {
    const src = await tempDir();
    await expect(importHfCheckpoint(src, src)).rejects.toThrow(/must differ from the source/);
  });

  it('refuses to export a config the family cannot express', async () => {
    const dir = await tempDir();
    const withBias = getPreset('tiny', { attentionBias: true });
    await expect(writeHfCheckpoint(dir, 'mixtral', withBias, randomWeights(withBias, 1))).rejects.toThrow(
      'config.attentionBias: true cannot be expressed in MixtralForCausalLM (always false)',
    );
    await expect(
      writeHfCheckpoint(dir, 'olmoe', getPreset('tiny'), randomWeights(getPreset('tiny'), 1)),
    ).rejects.toThrow(ConfigError);
  });

  it('derives a model name from the directory name', () => {
    expect(modelNameFromDir('/models/OLMoE-1B-7B-0924/')).toBe('OLMoE-1B-7B-0924');
    expect(modelNameFromDir('/m/My Model (v2)')).toBe('My-Model--v2-');
  });
});

describe('configFromHf on published configs', () => {
  const mixtral = {
    architectures: ['MixtralForCausalLM'],
    attention_dropout: 0.0,
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: 'silu',
    hidden_size: 4096,
    initializer_range: 0.02,
    intermediate_size: 14336,
    max_position_embeddings: 32768,
    model_type: 'mixtral',
    num_attention_heads: 32,
    num_experts_per_tok: 2,
    num_hidden_layers: 32,
    num_key_value_heads: 8,
    num_local_experts: 8,
    output_router_logits: false,
    rms_norm_eps: 1e-5,
    rope_theta: 1e6,
    router_aux_loss_coef: 0.02,
    sliding_window: null,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
    use_cache: true,
    vocab_size: 32000,
  };
  const olmoe = {
    architectures: ['OlmoeForCausalLM'],
    attention_bias: false,
    attention_dropout: 0.0,
    clip_qkv: null,
    eos_token_id: 50279,
    hidden_act: 'silu',
    hidden_size: 2048,
    initializer_range: 0.02,
    intermediate_size: 1024,
    max_position_embeddings: 4096,
    model_type: 'olmoe',
    norm_topk_prob: false,
    num_attention_heads: 16,
    num_experts: 64,
    num_experts_per_tok: 8,
    num_hidden_layers: 16,
    num_key_value_heads: 16,
    output_router_logits: false,
    pad_token_id: 1,
    rms_norm_eps: 1e-5,
    rope_scaling: null,
    rope_theta: 10000.0,
    router_aux_loss_coef: 0.01,
    tie_word_embeddings: false,
    vocab_size: 50304,
  };
  const qwen3 = {
    architectures: ['Qwen3MoeForCausalLM'],
    attention_bias: false,
    bos_token_id: 151643,
    decoder_sparse_step: 1,
    eos_token_id: 151645,
    head_dim: 128,
    hidden_act: 'silu',
    hidden_size: 2048,
    intermediate_size: 6144,
    max_position_embeddings: 40960,
    max_window_layers: 48,
    mlp_only_layers: [],
    model_type: 'qwen3_moe',
    moe_intermediate_size: 768,
    norm_topk_prob: true,
    num_attention_heads: 32,
    num_experts: 128,
    num_experts_per_tok: 8,
    num_hidden_layers: 48,
    num_key_value_heads: 4,
    rms_norm_eps: 1e-6,
    rope_scaling: null,
    rope_theta: 1e6,
    sliding_window: null,
    tie_word_embeddings: false,
    use_sliding_window: false,
    vocab_size: 151936,
  };
  const qwen2 = {
    architectures: ['Qwen2MoeForCausalLM'],
    bos_token_id: 151643,
    decoder_sparse_step: 1,
    eos_token_id: 151643,
    hidden_act: 'silu',
    hidden_size: 2048,
    intermediate_size: 5632,
    max_position_embeddings: 8192,
    max_window_layers: 21,
    model_type: 'qwen2_moe',
    moe_intermediate_size: 1408,
    norm_topk_prob: false,
    num_attention_heads: 16,
    num_experts: 60,
    num_experts_per_tok: 4,
    num_hidden_layers: 24,
    num_key_value_heads: 16,
    rms_norm_eps: 1e-6,
    rope_theta: 1e6,
    shared_expert_intermediate_size: 5632,
    sliding_window: 32768,
    tie_word_embeddings: false,
    use_sliding_window: false,
    vocab_size: 151936,
  };

  it('maps Mixtral-8x7B, OLMoE-1B-7B and Qwen3-30B-A3B to the shapes of their real-model presets', () => {
    const pairs = [
      [configFromHf(mixtral, 'm'), REAL_MODELS['mixtral-8x7b']],
      [configFromHf(olmoe, 'o'), REAL_MODELS['olmoe-1b-7b']],
      [configFromHf(qwen3, 'q'), REAL_MODELS['qwen3-30b-a3b']],
    ] as const;
    for (const [config, real] of pairs)
      expect(countConfigParams(config).totalParams).toBe(countParams(real.shape).totalParams);
  });

  it('maps each family’s fields and defaults', () => {
    expect(configFromHf(mixtral, 'm')).toMatchObject({
      family: 'mixtral',
      normTopKProb: true,
      maxContext: 32768,
      ropeTheta: 1e6,
      headDim: 128,
    });
    // OLMoE has no BOS token: EOS stands in.
    expect(configFromHf(olmoe, 'o')).toMatchObject({
      family: 'olmoe',
      qkNorm: 'projection',
      normTopKProb: false,
      bosTokenId: 50279,
      eosTokenId: 50279,
    });
    expect(configFromHf(qwen2, 'q')).toMatchObject({
      family: 'qwen2_moe',
      attentionBias: true,
      expertFfnSize: 1408,
      sharedExpertFfnSize: 5632,
      sharedExpertGate: true,
      numExperts: 60,
      maxContext: 8192,
    });
    expect(configFromHf(qwen3, 'q')).toMatchObject({
      family: 'qwen3_moe',
      qkNorm: 'head',
      headDim: 128,
      numKvHeads: 4,
      normTopKProb: true,
      eosTokenId: 151645,
    });
    expect(configFromHf({ ...qwen3, eos_token_id: [151645, 151643] }, 'q').eosTokenId).toBe(151645);
  });

  it('serves a sliding-window model up to its window', () => {
    expect(configFromHf({ ...mixtral, sliding_window: 4096 }, 'm').maxContext).toBe(4096);
    expect(configFromHf({ ...qwen2, use_sliding_window: true }, 'q').maxContext).toBe(8192);
    expect(configFromHf({ ...qwen2, use_sliding_window: true, sliding_window: 1024 }, 'q').maxContext).toBe(1024);
  });

  it('names the HF field it cannot support or is missing', () => {
    expect(() => configFromHf({ ...qwen3, rope_scaling: { type: 'yarn', factor: 4 } }, 'q')).toThrow(
      /^hf config.rope_scaling: .* is not supported: only plain RoPE/,
    );
    expect(() => configFromHf({ ...qwen2, mlp_only_layers: [0] }, 'q')).toThrow(/^hf config.mlp_only_layers/);
    expect(() => configFromHf({ ...olmoe, clip_qkv: 8 }, 'o')).toThrow(/^hf config.clip_qkv/);
    const { hidden_size: _dropped, ...noHidden } = mixtral;
    expect(() => configFromHf(noHidden, 'm')).toThrow('hf config.hidden_size: is required');
    expect(() => configFromHf({ ...mixtral, num_key_value_heads: 7 }, 'm')).toThrow(
      'config.numKvHeads: 7 does not divide numHeads 32',
    );
  });
});
