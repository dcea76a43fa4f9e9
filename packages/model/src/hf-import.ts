/**
 * Import of a Hugging Face MoE checkpoint directory (Mixtral, OLMoE, Qwen2-MoE, Qwen3-MoE): maps the HF
 * config onto ModelConfig, renames tensors to our canonical names, widens bf16/f16 to f32, checks every
 * shape, and writes a model directory (copying `tokenizer.json` when there is one). Tensors are
 * streamed one at a time from the source shards to the destination file.
 */

import { access, readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { openCheckpoint } from './checkpoint.ts';
import { validateConfig } from './config.ts';
import {
  ConfigError,
  MissingTensorError,
  ModelDirError,
  TensorDtypeError,
  TensorShapeError,
  UnknownArchitectureError,
} from './errors.ts';
import { HF_FAMILY_SPECS, familyOfHfConfig } from './hf-families.ts';
import type { HfFamilySpec } from './hf-families.ts';
import { TOKENIZER_FILE, writeModelDir } from './model-dir.ts';
import { sameShape } from './safetensors.ts';
import type { ProgressCallback } from './safetensors-writer.ts';
import type { ModelConfig } from './types.ts';
import { weightLayout } from './weight-layout.ts';

type HfConfig = Readonly<Record<string, unknown>>;

/** Stored dtypes we widen to f32 on import (quantised checkpoints, e.g. FP8, are not supported). */
const FLOAT_DTYPES: readonly string[] = ['F32', 'F16', 'BF16'];

const field = (name: string): string => `hf config.${name}`;

function int(hf: HfConfig, name: string, fallback?: number): number {
  const value = hf[name] ?? fallback;
  if (value === undefined) throw new ConfigError(field(name), 'is required');
  if (typeof value !== 'number' || !Number.isSafeInteger(value))
    throw new ConfigError(field(name), `${JSON.stringify(value)} is not an integer`);
  return value;
}

function num(hf: HfConfig, name: string, fallback: number): number {
  const value = hf[name] ?? fallback;
  if (typeof value !== 'number') throw new ConfigError(field(name), `${JSON.stringify(value)} is not a number`);
  return value;
}

function bool(hf: HfConfig, name: string, fallback: boolean): boolean {
  const value = hf[name] ?? fallback;
  if (typeof value !== 'boolean') throw new ConfigError(field(name), `${JSON.stringify(value)} is not a boolean`);
  return value;
}

/** A token id field that may be null or a list (the first id is used). */
function tokenId(hf: HfConfig, name: string): number | undefined {
  const value = hf[name];
  const first: unknown = Array.isArray(value) ? value[0] : value;
  if (first === undefined || first === null) return undefined;
  if (typeof first !== 'number' || !Number.isSafeInteger(first))
    throw new ConfigError(field(name), `${JSON.stringify(value)} is not a token id`);
  return first;
}

function rejectUnsupported(hf: HfConfig, spec: HfFamilySpec): void {
  const reject = (name: string, why: string): never => {
    throw new ConfigError(field(name), `${JSON.stringify(hf[name])} is not supported: ${why}`);
  };
  if (hf['rope_scaling'] !== undefined && hf['rope_scaling'] !== null)
    reject('rope_scaling', 'only plain RoPE is implemented');
  if (hf['hidden_act'] !== undefined && hf['hidden_act'] !== 'silu') reject('hidden_act', 'experts are SwiGLU (silu)');
  if (hf['clip_qkv'] !== undefined && hf['clip_qkv'] !== null) reject('clip_qkv', 'Q/K/V clipping is not implemented');
  if ((hf['decoder_sparse_step'] ?? 1) !== 1) reject('decoder_sparse_step', 'every layer must be an MoE layer');
  const mlpOnly = hf['mlp_only_layers'];
  if (Array.isArray(mlpOnly) && mlpOnly.length > 0) reject('mlp_only_layers', 'every layer must be an MoE layer');
  if (spec.family !== 'qwen3_moe' && hf['attention_bias'] === true)
    reject('attention_bias', `${spec.architecture} has no attention biases in our implementation`);
}

/**
 * The context we can serve exactly: a sliding window changes attention only beyond the window, so a
 * model with one is served up to the window's length.
 */
function maxContext(hf: HfConfig, spec: HfFamilySpec): number {
  const positions = int(hf, 'max_position_embeddings', spec.defaults.maxPositionEmbeddings);
  const window = hf['sliding_window'];
  const windowed = spec.family === 'mixtral' ? typeof window === 'number' : hf['use_sliding_window'] === true;
  return windowed && typeof window === 'number' ? Math.min(positions, window) : positions;
}

/** The HF family of a parsed HF `config.json`; throws UnknownArchitectureError otherwise. */
export function hfFamilyOf(hf: HfConfig): HfFamilySpec {
  const architectures = hf['architectures'];
  const architecture =
    Array.isArray(architectures) && typeof architectures[0] === 'string' ? architectures[0] : undefined;
  const modelType = typeof hf['model_type'] === 'string' ? hf['model_type'] : undefined;
  const spec = familyOfHfConfig(architecture, modelType);
  if (spec === undefined) {
    throw new UnknownArchitectureError(
      architecture ?? modelType ?? '(none)',
      Object.values(HF_FAMILY_SPECS).map((s) => s.architecture),
    );
  }
  return spec;
}

/** Maps a parsed HF `config.json` onto a validated ModelConfig named `name`. */
export function configFromHf(hf: HfConfig, name: string): ModelConfig {
  const spec = hfFamilyOf(hf);
  rejectUnsupported(hf, spec);
  const hiddenSize = int(hf, 'hidden_size');
  const numHeads = int(hf, 'num_attention_heads');
  if (hf['head_dim'] === undefined && hiddenSize % numHeads !== 0) {
    throw new ConfigError(
      field('head_dim'),
      `is absent and hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numHeads}`,
    );
  }
  const eosTokenId = tokenId(hf, 'eos_token_id');
  if (eosTokenId === undefined) throw new ConfigError(field('eos_token_id'), 'is required');
  return validateConfig({
    family: spec.family,
    name,
    vocabSize: int(hf, 'vocab_size'),
    hiddenSize,
    numLayers: int(hf, 'num_hidden_layers'),
    numHeads,
    numKvHeads: int(hf, 'num_key_value_heads', numHeads),
    headDim: int(hf, 'head_dim', hiddenSize / numHeads),
    maxContext: maxContext(hf, spec),
    rmsNormEps: num(hf, 'rms_norm_eps', spec.defaults.rmsNormEps),
    ropeTheta: num(hf, 'rope_theta', spec.defaults.ropeTheta),
    attentionBias: spec.fixed.attentionBias ?? bool(hf, 'attention_bias', false),
    qkNorm: spec.fixed.qkNorm ?? 'none',
    numExperts: int(hf, spec.numExpertsField),
    numExpertsPerToken: int(hf, 'num_experts_per_tok'),
    expertFfnSize: int(hf, spec.expertFfnField),
    scoring: 'softmax',
    normTopKProb: spec.fixed.normTopKProb ?? bool(hf, 'norm_topk_prob', spec.defaults.normTopKProb),
    sharedExpertFfnSize: spec.hasSharedExpert ? int(hf, 'shared_expert_intermediate_size') : 0,
    sharedExpertGate: spec.fixed.sharedExpertGate ?? false,
    tieWordEmbeddings: bool(hf, 'tie_word_embeddings', false),
    // NOTE: OLMoE has no BOS token (bos_token_id null); its tokenizer starts documents with EOS.
    bosTokenId: tokenId(hf, 'bos_token_id') ?? eosTokenId,
    eosTokenId,
  });
}

/** A model name from a directory name: our name alphabet, other characters replaced by `-`. */
export function modelNameFromDir(dir: string): string {
  const cleaned = basename(resolve(dir))
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '');
  return cleaned.slice(0, 128) || 'imported';
}

export interface ImportHfOptions {
  /** Model name; by default derived from the source directory's name. */
  readonly name?: string;
  readonly onProgress?: ProgressCallback;
  /** Shard the imported weights. Omitted: one `model.safetensors`. */
  readonly maxShardBytes?: number;
}

export interface ImportedModel {
  readonly config: ModelConfig;
  readonly weightsDigest: string;
  readonly sizeBytes: number;
  /** Tensors in the source the config does not use (e.g. stale `rotary_emb.inv_freq` buffers). */
  readonly ignoredTensors: readonly string[];
}

async function readHfConfig(sourceDir: string): Promise<HfConfig> {
  const path = join(sourceDir, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (cause) {
    throw new ConfigError(path, 'cannot be read as JSON', { cause });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError(path, 'is not a JSON object');
  return raw as HfConfig;
}

/**
 * Imports the HF checkpoint in `sourceDir` into a model directory at `destDir`. Throws
 * UnknownArchitectureError, ConfigError (naming the HF field), MissingTensorError (naming the HF
 * tensor), TensorShapeError (naming both shapes) or TensorDtypeError before writing any weights.
 */
export async function importHfCheckpoint(
  sourceDir: string,
  destDir: string,
  options: ImportHfOptions = {},
): Promise<ImportedModel> {
  if (resolve(sourceDir) === resolve(destDir))
    throw new ModelDirError(destDir, 'import destination must differ from the source checkpoint');
  const hf = await readHfConfig(sourceDir);
  const spec = hfFamilyOf(hf);
  const config = configFromHf(hf, options.name ?? modelNameFromDir(sourceDir));
  const reader = await openCheckpoint(sourceDir);
  try {
    const layout = weightLayout(config);
    // Check names and shapes from the headers before writing anything.
    for (const t of layout) {
      const info = reader.info(spec.hfTensorName(t.name));
      if (info === undefined) throw new MissingTensorError(spec.hfTensorName(t.name), sourceDir);
      if (!sameShape(t.shape, info.shape)) throw new TensorShapeError(spec.hfTensorName(t.name), t.shape, info.shape);
      if (!FLOAT_DTYPES.includes(info.dtype))
        throw new TensorDtypeError(spec.hfTensorName(t.name), 'F32, F16 or BF16', info.dtype);
    }
    const used = new Set(layout.map((t) => spec.hfTensorName(t.name)));
    const tokenizer = join(sourceDir, TOKENIZER_FILE);
    const hasTokenizer = await access(tokenizer).then(
      () => true,
      () => false,
    );
    const written = await writeModelDir(destDir, config, (t) => reader.readF32(spec.hfTensorName(t.name), t.shape), {
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      ...(options.maxShardBytes === undefined ? {} : { maxShardBytes: options.maxShardBytes }),
      ...(hasTokenizer ? { tokenizerFrom: tokenizer } : {}),
    });
    return {
      config,
      weightsDigest: written.weightsDigest,
      sizeBytes: written.sizeBytes,
      ignoredTensors: reader.tensorNames.filter((n) => !used.has(n)),
    };
  } finally {
    await reader.close();
  }
}
