/**
 * Writes a checkpoint in a Hugging Face family's own format (HF `config.json`, HF tensor names, f32 or
 * bf16, optionally sharded with an index) — the inverse of `importHfCheckpoint`. Tests and the engine's
 * generation tests use it to produce small checkpoints of each family without downloading any.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeCheckpoint } from './checkpoint.ts';
import { ConfigError, MissingTensorError, TensorShapeError } from './errors.ts';
import { HF_FAMILY_SPECS, checkRepresentable } from './hf-families.ts';
import type { HfFamily, HfFamilySpec } from './hf-families.ts';
import { sameShape } from './safetensors.ts';
import type { TensorToWrite } from './safetensors-writer.ts';
import type { ModelConfig, WeightMap } from './types.ts';
import { numElements, weightLayout } from './weight-layout.ts';

export interface WriteHfCheckpointOptions {
  /** Split the weights into (about three) shards with a `model.safetensors.index.json`. */
  readonly sharded?: boolean;
  /** Stored dtype; bf16 rounds to nearest even, as `torch.Tensor.to(torch.bfloat16)` does. */
  readonly dtype?: 'bf16' | 'f32';
  /** Contents of a `tokenizer.json` to place next to the weights. */
  readonly tokenizerJson?: string;
}

function familyFields(spec: HfFamilySpec, c: ModelConfig): Record<string, unknown> {
  switch (spec.family) {
    case 'mixtral':
      return {
        intermediate_size: c.expertFfnSize,
        num_local_experts: c.numExperts,
        sliding_window: null,
        router_aux_loss_coef: 0.02,
      };
    case 'olmoe':
      return {
        intermediate_size: c.expertFfnSize,
        num_experts: c.numExperts,
        norm_topk_prob: c.normTopKProb,
        clip_qkv: null,
        attention_bias: false,
      };
    case 'qwen2_moe':
      return {
        intermediate_size: 4 * c.expertFfnSize,
        moe_intermediate_size: c.expertFfnSize,
        shared_expert_intermediate_size: c.sharedExpertFfnSize,
        num_experts: c.numExperts,
        norm_topk_prob: c.normTopKProb,
        decoder_sparse_step: 1,
        mlp_only_layers: [],
        use_sliding_window: false,
        sliding_window: null,
      };
    case 'qwen3_moe':
      return {
        head_dim: c.headDim,
        intermediate_size: 4 * c.expertFfnSize,
        moe_intermediate_size: c.expertFfnSize,
        num_experts: c.numExperts,
        norm_topk_prob: c.normTopKProb,
        decoder_sparse_step: 1,
        mlp_only_layers: [],
        attention_bias: c.attentionBias,
        use_sliding_window: false,
        sliding_window: null,
      };
  }
}

/** The HF `config.json` object of `config` in `family`'s format. Throws ConfigError if not expressible. */
export function hfConfigOf(
  family: HfFamily,
  config: ModelConfig,
  dtype: 'bf16' | 'f32' = 'f32',
): Record<string, unknown> {
  const spec = HF_FAMILY_SPECS[family];
  checkRepresentable(spec, config);
  const headDimImplied = config.hiddenSize / config.numHeads;
  const writesHeadDim = family === 'mixtral' || family === 'qwen3_moe';
  if (!writesHeadDim && config.headDim !== headDimImplied) {
    throw new ConfigError(
      'config.headDim',
      `${config.headDim} ≠ hiddenSize / numHeads (${headDimImplied}), which ${spec.architecture} cannot express`,
    );
  }
  return {
    architectures: [spec.architecture],
    model_type: spec.modelType,
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    num_key_value_heads: config.numKvHeads,
    ...(family === 'mixtral' ? { head_dim: config.headDim } : {}),
    hidden_act: 'silu',
    max_position_embeddings: config.maxContext,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: null,
    num_experts_per_tok: config.numExpertsPerToken,
    ...familyFields(spec, config),
    tie_word_embeddings: config.tieWordEmbeddings,
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenId,
    torch_dtype: dtype === 'bf16' ? 'bfloat16' : 'float32',
  };
}

/**
 * Writes `weights` (canonical names, f32) as an HF checkpoint of `family` into `dir`. Every tensor the
 * config requires must be present with its exact shape.
 */
export async function writeHfCheckpoint(
  dir: string,
  family: HfFamily,
  config: ModelConfig,
  weights: WeightMap,
  options: WriteHfCheckpointOptions = {},
): Promise<void> {
  const dtype = options.dtype ?? 'f32';
  const spec = HF_FAMILY_SPECS[family];
  const hfConfig = hfConfigOf(family, config, dtype);
  const tensors: TensorToWrite[] = weightLayout(config).map((t) => {
    const tensor = weights.get(t.name);
    if (tensor === undefined) throw new MissingTensorError(t.name, 'the weights to export');
    if (!sameShape(t.shape, tensor.shape)) throw new TensorShapeError(t.name, t.shape, tensor.shape);
    return { name: spec.hfTensorName(t.name), dtype, shape: t.shape, data: tensor.data };
  });
  const totalBytes = tensors.reduce((sum, t) => sum + numElements(t.shape) * (dtype === 'bf16' ? 2 : 4), 0);
  await mkdir(dir, { recursive: true });
  await writeCheckpoint(dir, tensors, {
    metadata: { format: 'pt' },
    ...(options.sharded === true ? { maxShardBytes: Math.ceil(totalBytes / 3) } : {}),
  });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(hfConfig, null, 2)}\n`);
  if (options.tokenizerJson !== undefined) await writeFile(join(dir, 'tokenizer.json'), options.tokenizerJson);
}
