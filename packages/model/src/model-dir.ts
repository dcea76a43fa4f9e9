/**
 * A model directory: `config.json` (our ModelConfig plus a `switchyard` block with the format version
 * and the weights digest), the checkpoint (`model.safetensors`, or shards and an index) and, for
 * imported models, `tokenizer.json`.
 *
 * Invariant: `config.json` is written last and removed first, so a directory with a `config.json`
 * holds complete weights whose SHA-256 is the recorded digest.
 */

import { copyFile, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { configToJson, validateConfig } from './config.ts';
import { INDEX_FILE, SINGLE_FILE, computeWeightsDigest, openCheckpoint, writeCheckpoint } from './checkpoint.ts';
import { MissingTensorError, ModelDirError, TensorShapeError, UnexpectedTensorError } from './errors.ts';
import { getPreset } from './presets.ts';
import type { PresetName } from './presets.ts';
import { ChunkBuffers, randomTensorChunks } from './random-weights.ts';
import { sameShape } from './safetensors.ts';
import type { TensorReader } from './safetensors.ts';
import type { ProgressCallback, TensorToWrite } from './safetensors-writer.ts';
import type { F32Tensor, ModelConfig, WeightMap } from './types.ts';
import { weightLayout } from './weight-layout.ts';
import type { TensorSpec } from './weight-layout.ts';
import { pathExists as exists } from './path-exists.ts';

export const CONFIG_FILE = 'config.json';
export const TOKENIZER_FILE = 'tokenizer.json';
/** Chat template and special tokens, copied beside `tokenizer.json` when the source has one. */
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
export const MODEL_DIR_FORMAT_VERSION = 1;

/**
 * Weights to write: a map; a function producing each tensor when the writer reaches it; or a function
 * producing each tensor as f32 chunks (see `TensorDataSource` for the buffer-reuse contract).
 */
export type WeightSource =
  | WeightMap
  | ((spec: TensorSpec) => F32Tensor | Promise<F32Tensor>)
  | { readonly chunks: (spec: TensorSpec) => Iterable<Float32Array> };

export interface WriteModelDirOptions {
  readonly onProgress?: ProgressCallback;
  /** Shard the weights into files of at most this many bytes. Omitted: one `model.safetensors`. */
  readonly maxShardBytes?: number;
  /** A `tokenizer.json` to copy into the directory (imported models). */
  readonly tokenizerFrom?: string;
}

export interface WrittenModelDir {
  readonly weightsDigest: string;
  readonly sizeBytes: number;
}

/** Removes what a previous write may have left: config first (the directory is then "incomplete"). */
async function clearModelFiles(dir: string): Promise<void> {
  await rm(join(dir, CONFIG_FILE), { force: true });
  const stale = (await readdir(dir)).filter(
    (f) =>
      f === SINGLE_FILE ||
      f === INDEX_FILE ||
      f === TOKENIZER_FILE ||
      f === TOKENIZER_CONFIG_FILE ||
      /^model-\d{5}-of-\d{5}\.safetensors$/.test(f),
  );
  await Promise.all(stale.map((f) => rm(join(dir, f), { force: true })));
}

function checkNames(config: ModelConfig, names: Iterable<string>, where: string): void {
  const expected = new Set(weightLayout(config).map((s) => s.name));
  for (const name of names) if (!expected.has(name)) throw new UnexpectedTensorError(name, where);
}

function toWrite(spec: TensorSpec, source: WeightSource): TensorToWrite {
  if ('chunks' in source)
    return { name: spec.name, dtype: 'f32', shape: spec.shape, data: { chunks: () => source.chunks(spec) } };
  const load = async (): Promise<Float32Array> => {
    const tensor = typeof source === 'function' ? await source(spec) : source.get(spec.name);
    if (tensor === undefined) throw new MissingTensorError(spec.name, 'the weights to write');
    if (!sameShape(spec.shape, tensor.shape)) throw new TensorShapeError(spec.name, spec.shape, tensor.shape);
    return tensor.data;
  };
  return { name: spec.name, dtype: 'f32', shape: spec.shape, data: load };
}

/**
 * Writes a model directory (creating `dir` if needed, replacing a model already there). Every tensor
 * of `weightLayout(config)` must be supplied with its exact shape; the weights are f32.
 */
export async function writeModelDir(
  dir: string,
  config: ModelConfig,
  weights: WeightSource,
  options: WriteModelDirOptions = {},
): Promise<WrittenModelDir> {
  const checked = validateConfig(configToJson(config));
  if (typeof weights !== 'function' && !('chunks' in weights))
    checkNames(checked, weights.keys(), 'the weights to write');
  await mkdir(dir, { recursive: true });
  await clearModelFiles(dir);
  const tensors = weightLayout(checked).map((spec) => toWrite(spec, weights));
  const written = await writeCheckpoint(dir, tensors, {
    ...(options.maxShardBytes === undefined ? {} : { maxShardBytes: options.maxShardBytes }),
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
  });
  if (options.tokenizerFrom !== undefined) {
    await copyFile(options.tokenizerFrom, join(dir, TOKENIZER_FILE));
    const configFrom = join(dirname(options.tokenizerFrom), TOKENIZER_CONFIG_FILE);
    if (await exists(configFrom)) await copyFile(configFrom, join(dir, TOKENIZER_CONFIG_FILE));
  }
  const json = {
    ...configToJson(checked),
    switchyard: { formatVersion: MODEL_DIR_FORMAT_VERSION, weightsDigest: written.sha256 },
  };
  const configPath = join(dir, CONFIG_FILE);
  await writeFile(`${configPath}.partial`, `${JSON.stringify(json, null, 2)}\n`);
  await rename(`${configPath}.partial`, configPath);
  return { weightsDigest: written.sha256, sizeBytes: written.sizeBytes };
}

/** Writes a preset (or any config) with seeded random weights, generating one tensor at a time. */
export function initModelDir(
  dir: string,
  preset: PresetName | ModelConfig,
  seed: number,
  onProgress?: ProgressCallback,
): Promise<WrittenModelDir> {
  const config = typeof preset === 'string' ? getPreset(preset) : preset;
  const buffers = new ChunkBuffers();
  const source = { chunks: (spec: TensorSpec) => randomTensorChunks(spec, seed, buffers, config) };
  return writeModelDir(dir, config, source, onProgress === undefined ? {} : { onProgress });
}

export interface ModelDirInfo {
  readonly dir: string;
  readonly config: ModelConfig;
  readonly weightsDigest: string;
  /** `tokenizer.json` in the directory, if there is one (imported models); else the byte tokenizer applies. */
  readonly tokenizerPath: string | undefined;
}

/** Reads and validates `config.json` of a model directory. */
export async function readModelDirInfo(dir: string): Promise<ModelDirInfo> {
  const configPath = join(dir, CONFIG_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(configPath, 'utf8'));
  } catch (cause) {
    throw new ModelDirError(dir, `cannot read ${CONFIG_FILE} (is this a model directory?)`, { cause });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ModelDirError(dir, `${CONFIG_FILE} is not a JSON object`);
  const { switchyard: meta, ...fields } = raw as Record<string, unknown>;
  const { formatVersion, weightsDigest } = (typeof meta === 'object' && meta !== null ? meta : {}) as Record<
    string,
    unknown
  >;
  if (formatVersion !== MODEL_DIR_FORMAT_VERSION) {
    throw new ModelDirError(
      dir,
      `${CONFIG_FILE} switchyard.formatVersion is ${JSON.stringify(formatVersion)}, expected ${MODEL_DIR_FORMAT_VERSION}`,
    );
  }
  if (typeof weightsDigest !== 'string' || !/^[0-9a-f]{64}$/.test(weightsDigest)) {
    throw new ModelDirError(dir, `${CONFIG_FILE} switchyard.weightsDigest is not a SHA-256 hex digest`);
  }
  const config = validateConfig(fields);
  const tokenizer = join(dir, TOKENIZER_FILE);
  return { dir, config, weightsDigest, tokenizerPath: (await exists(tokenizer)) ? tokenizer : undefined };
}

/** A model directory opened for lazy, one-tensor-at-a-time loading. */
export interface OpenModelDir extends ModelDirInfo {
  /** Every tensor the config requires, in model order. */
  readonly layout: readonly TensorSpec[];
  /** The underlying reader (raw dtypes, i8, tensor infos). */
  readonly reader: TensorReader;
  /** One tensor as f32, checked against the config's shape. */
  readTensor(name: string): Promise<F32Tensor>;
  close(): Promise<void>;
}

export interface OpenModelDirOptions {
  /** Re-hash the weights files and compare with the recorded digest (reads every byte once). */
  readonly verifyDigest?: boolean;
}

/**
 * Opens a model directory: validates the config, opens the checkpoint headers, and checks that the
 * checkpoint holds exactly the config's tensors with the right shapes (no data is read yet).
 */
export async function openModelDir(dir: string, options: OpenModelDirOptions = {}): Promise<OpenModelDir> {
  const info = await readModelDirInfo(dir);
  if (options.verifyDigest === true) {
    const actual = await computeWeightsDigest(dir);
    if (actual !== info.weightsDigest) {
      throw new ModelDirError(
        dir,
        `weights digest ${actual} does not match ${info.weightsDigest} recorded in ${CONFIG_FILE}`,
      );
    }
  }
  const reader = await openCheckpoint(dir);
  try {
    const layout = weightLayout(info.config);
    const specs = new Map(layout.map((s) => [s.name, s]));
    checkNames(info.config, reader.tensorNames, dir);
    for (const spec of layout) {
      const stored = reader.info(spec.name);
      if (stored === undefined) throw new MissingTensorError(spec.name, dir);
      if (!sameShape(spec.shape, stored.shape)) throw new TensorShapeError(spec.name, spec.shape, stored.shape);
    }
    const readTensor = (name: string): Promise<F32Tensor> => {
      const spec = specs.get(name);
      if (spec === undefined) return Promise.reject(new MissingTensorError(name, `the layout of ${info.config.name}`));
      return reader.readF32(name, spec.shape);
    };
    return { ...info, layout, reader, readTensor, close: () => reader.close() };
  } catch (error) {
    await reader.close();
    throw error;
  }
}

export interface LoadedModel {
  readonly config: ModelConfig;
  readonly weights: WeightMap;
  readonly weightsDigest: string;
  readonly tokenizerPath: string | undefined;
}

export interface LoadModelDirOptions extends OpenModelDirOptions {
  /**
   * Load the routed experts' tensors too (default true). A gateway whose experts live on workers
   * passes false, so its memory holds only the dense part.
   */
  readonly routedExperts?: boolean;
}

/** Whether a tensor belongs to a routed expert (those live on the expert workers in a cluster). */
export function isRoutedExpertTensor(name: string): boolean {
  return name.includes('.mlp.experts.');
}

/** Loads a model directory into memory as f32: every tensor, or all but the routed experts'. */
export async function loadModelDir(dir: string, options: LoadModelDirOptions = {}): Promise<LoadedModel> {
  const model = await openModelDir(dir, options);
  const skipExperts = options.routedExperts === false;
  try {
    const weights = new Map<string, F32Tensor>();
    for (const spec of model.layout) {
      if (skipExperts && isRoutedExpertTensor(spec.name)) continue;
      weights.set(spec.name, await model.readTensor(spec.name));
    }
    return { config: model.config, weights, weightsDigest: model.weightsDigest, tokenizerPath: model.tokenizerPath };
  } finally {
    await model.close();
  }
}
