/**
 * A checkpoint is the weights part of a model directory: either one `model.safetensors`, or shards
 * `model-0000i-of-0000N.safetensors` with `model.safetensors.index.json` (`weight_map`: tensor → shard).
 * Reading opens every shard's header and reads tensors lazily; writing shards deterministically and
 * hashes all shard bytes, in shard order, as one SHA-256 stream (the weights digest).
 */

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { MissingTensorError, ModelDirError, SafetensorsFormatError } from './errors.ts';
import { elementSize, layOut, toHeaderDtype } from './safetensors-format.ts';
import { SafetensorsFile, toF32Tensor } from './safetensors.ts';
import type { LoadedTensor, TensorInfo, TensorReader } from './safetensors.ts';
import { writeSafetensors } from './safetensors-writer.ts';
import type { ProgressCallback, TensorToWrite } from './safetensors-writer.ts';
import type { F32Tensor } from './types.ts';
import { numElements } from './weight-layout.ts';
import { pathExists as exists } from './path-exists.ts';

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** Several shards behind one name → shard map. Invariant: every mapped tensor exists in its shard. */
class ShardedReader implements TensorReader {
  readonly tensorNames: readonly string[];
  private readonly shards: readonly SafetensorsFile[];
  private readonly shardOf: ReadonlyMap<string, SafetensorsFile>;
  private readonly where: string;

  constructor(where: string, shards: readonly SafetensorsFile[], shardOf: Map<string, SafetensorsFile>) {
    this.where = where;
    this.shards = shards;
    this.shardOf = shardOf;
    this.tensorNames = [...shardOf.keys()].sort();
  }

  info(name: string): TensorInfo | undefined {
    return this.shardOf.get(name)?.info(name);
  }

  read(name: string): Promise<LoadedTensor> {
    const shard = this.shardOf.get(name);
    if (shard === undefined) return Promise.reject(new MissingTensorError(name, this.where));
    return shard.read(name);
  }

  async readF32(name: string, expectedShape?: readonly number[]): Promise<F32Tensor> {
    const shard = this.shardOf.get(name);
    if (shard === undefined) throw new MissingTensorError(name, this.where);
    return toF32Tensor(name, await shard.read(name), expectedShape);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
  }
}

/** The shard files named by an index, in first-appearance order of the sorted weight map. */
function parseIndex(json: string, indexPath: string): Map<string, string> {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (cause) {
    throw new SafetensorsFormatError(indexPath, 'is not valid JSON', { cause });
  }
  const weightMap = typeof raw === 'object' && raw !== null ? (raw as { weight_map?: unknown }).weight_map : undefined;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new SafetensorsFormatError(indexPath, 'has no "weight_map" object');
  }
  const map = new Map<string, string>();
  for (const [tensor, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || file !== basename(file) || file === '..' || file === '.') {
      throw new SafetensorsFormatError(
        indexPath,
        `weight_map["${tensor}"] is not a file name in the same directory: ${JSON.stringify(file)}`,
      );
    }
    map.set(tensor, file);
  }
  return map;
}

async function openSharded(dir: string, indexPath: string): Promise<TensorReader> {
  const weightMap = parseIndex(await readFile(indexPath, 'utf8'), indexPath);
  const files = [...new Set(weightMap.values())].sort();
  const opened = new Map<string, SafetensorsFile>();
  try {
    for (const file of files) {
      const path = join(dir, file);
      if (!(await exists(path))) throw new ModelDirError(dir, `shard ${file} named in ${INDEX_FILE} does not exist`);
      opened.set(file, await SafetensorsFile.open(path));
    }
    const shardOf = new Map<string, SafetensorsFile>();
    for (const [tensor, file] of weightMap) {
      const shard = opened.get(file);
      if (shard?.info(tensor) === undefined) throw new MissingTensorError(tensor, join(dir, file));
      shardOf.set(tensor, shard);
    }
    return new ShardedReader(indexPath, [...opened.values()], shardOf);
  } catch (error) {
    await Promise.all([...opened.values()].map((s) => s.close()));
    throw error;
  }
}

/** Opens the checkpoint in `dir` (index + shards if there is an index, else `model.safetensors`). */
export async function openCheckpoint(dir: string): Promise<TensorReader> {
  const indexPath = join(dir, INDEX_FILE);
  if (await exists(indexPath)) return openSharded(dir, indexPath);
  const single = join(dir, SINGLE_FILE);
  if (await exists(single)) return SafetensorsFile.open(single);
  throw new ModelDirError(dir, `has neither ${SINGLE_FILE} nor ${INDEX_FILE}`);
}

/** The weights files of the checkpoint in `dir`, in digest order. */
export async function checkpointFiles(dir: string): Promise<readonly string[]> {
  const indexPath = join(dir, INDEX_FILE);
  if (await exists(indexPath))
    return [...new Set(parseIndex(await readFile(indexPath, 'utf8'), indexPath).values())].sort();
  return [SINGLE_FILE];
}

/** SHA-256 (hex) over the bytes of the checkpoint's weights files, in order, as one stream. */
export async function computeWeightsDigest(dir: string): Promise<string> {
  const hash = createHash('sha256');
  for (const file of await checkpointFiles(dir)) {
    for await (const chunk of createReadStream(join(dir, file), { highWaterMark: 16 << 20 })) {
      hash.update(chunk as Buffer);
    }
  }
  return hash.digest('hex');
}

export interface WriteCheckpointOptions {
  /** Start a new shard before a shard would exceed this many data bytes. Omitted: a single file. */
  readonly maxShardBytes?: number;
  /** Shard prefix, `model` by default (`model-00001-of-00002.safetensors`). */
  readonly baseName?: string;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly onProgress?: ProgressCallback;
}

export interface WrittenCheckpoint {
  /** Weights files in digest order. */
  readonly files: readonly string[];
  readonly sizeBytes: number;
  /** SHA-256 (hex) over all weights files' bytes, in order. */
  readonly sha256: string;
}

function tensorBytes(t: TensorToWrite): number {
  return numElements(t.shape) * elementSize(toHeaderDtype(t.dtype));
}

/** Splits tensors (sorted by name) into consecutive shards of at most `maxBytes` data bytes each. */
function planShards(tensors: readonly TensorToWrite[], maxBytes: number): TensorToWrite[][] {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const shards: TensorToWrite[][] = [];
  let current: TensorToWrite[] = [];
  let currentBytes = 0;
  for (const t of sorted) {
    const bytes = tensorBytes(t);
    if (current.length > 0 && currentBytes + bytes > maxBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(t);
    currentBytes += bytes;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);
  return shards;
}

function shardName(base: string, i: number, n: number): string {
  const pad = (k: number): string => String(k).padStart(5, '0');
  return `${base}-${pad(i + 1)}-of-${pad(n)}.safetensors`;
}

/**
 * Writes tensors as a checkpoint into `dir` (which must exist): a single file, or — with
 * `maxShardBytes` and more than one shard's worth of data — shards plus an index. Deterministic.
 */
export async function writeCheckpoint(
  dir: string,
  tensors: readonly TensorToWrite[],
  options: WriteCheckpointOptions = {},
): Promise<WrittenCheckpoint> {
  const base = options.baseName ?? 'model';
  const shards = options.maxShardBytes === undefined ? [tensors] : planShards(tensors, options.maxShardBytes);
  const files = shards.length === 1 ? [`${base}.safetensors`] : shards.map((_, i) => shardName(base, i, shards.length));
  const hash = createHash('sha256');
  const fileSizes = shards.map((shard) => layOut(shard, options.metadata).fileBytes);
  const totalFileBytes = fileSizes.reduce((a, b) => a + b, 0);
  let doneBefore = 0;
  for (const [i, shard] of shards.entries()) {
    await writeSafetensors(join(dir, files[i] ?? ''), shard, {
      hash,
      ...(options.metadata === undefined ? {} : { metadata: options.metadata }),
      onProgress: (written) => options.onProgress?.(doneBefore + written, totalFileBytes),
    });
    doneBefore += fileSizes[i] ?? 0;
  }
  if (shards.length > 1) {
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of shards.entries()) for (const t of shard) weightMap[t.name] = files[i] ?? '';
    const totalTensorBytes = tensors.reduce((sum, t) => sum + tensorBytes(t), 0);
    const index = { metadata: { total_size: totalTensorBytes }, weight_map: weightMap };
    const indexPath = join(dir, `${base}.safetensors.index.json`);
    await writeFile(`${indexPath}.partial`, `${JSON.stringify(index, null, 2)}\n`);
    await rename(`${indexPath}.partial`, indexPath);
  }
  return { files, sizeBytes: totalFileBytes, sha256: hash.digest('hex') };
}
