import { createHash } from 'node:crypto';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MissingTensorError, ModelDirError, TensorShapeError, UnexpectedTensorError } from '../src/errors.ts';
import { initModelDir, loadModelDir, openModelDir, readModelDirInfo, writeModelDir } from '../src/model-dir.ts';
import { getPreset } from '../src/presets.ts';
import { randomWeights } from '../src/random-weights.ts';
import { writeSafetensors } from '../src/safetensors-writer.ts';
import { tensorNames } from '../src/weight-layout.ts';
import { useTempDirs } from './helpers.ts';

const tempDir = useTempDirs();

async function fileDigests(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of (await readdir(dir)).sort())
    out[f] = createHash('sha256')
      .update(await readFile(join(dir, f)))
      .digest('hex');
  return out;
}

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
  }
  throw new Error('expected a rejection');
}

describe('model directories', () => {
  it('init tiny twice gives byte-identical files, and the digest is the SHA-256 of the weights', async () => {
    const [a, b] = [await tempDir(), await tempDir()];
    const first = await initModelDir(a, 'tiny', 1234);
    await initModelDir(b, 'tiny', 1234);
    const digests = await fileDigests(a);
    expect(Object.keys(digests)).toEqual(['config.json', 'model.safetensors']);
    expect(await fileDigests(b)).toEqual(digests);
    expect(first.weightsDigest).toBe(digests['model.safetensors']);
  });

  it('a different seed gives different weights and a different digest', async () => {
    const [a, b] = [await tempDir(), await tempDir()];
    expect((await initModelDir(a, 'tiny', 1)).weightsDigest).not.toBe((await initModelDir(b, 'tiny', 2)).weightsDigest);
  });

  it('writes our config plus the format version and digest to config.json', async () => {
    const dir = await tempDir();
    const { weightsDigest } = await initModelDir(dir, 'tiny', 7);
    const json = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(json['switchyard']).toEqual({ formatVersion: 1, weightsDigest });
    expect(json['name']).toBe('tiny');
    const info = await readModelDirInfo(dir);
    expect(info.config).toEqual(getPreset('tiny'));
    expect(info.tokenizerPath).toBeUndefined();
  });

  it('loads exactly the weights randomWeights generates, verifying the digest on request', async () => {
    const dir = await tempDir();
    const config = getPreset('tiny', {
      qkNorm: 'head',
      attentionBias: true,
      sharedExpertFfnSize: 16,
      sharedExpertGate: true,
    });
    const { weightsDigest } = await initModelDir(dir, config, 3);
    const loaded = await loadModelDir(dir, { verifyDigest: true });
    expect(loaded.config).toEqual(config);
    expect(loaded.weightsDigest).toBe(weightsDigest);
    expect(loaded.weights).toEqual(randomWeights(config, 3));
  });

  it('reports progress as bytes written of the total', async () => {
    const dir = await tempDir();
    const seen: [number, number][] = [];
    const { sizeBytes } = await initModelDir(dir, 'tiny', 1, (done, total) => seen.push([done, total]));
    expect(seen.at(-1)).toEqual([sizeBytes, sizeBytes]);
  });

  it('opens lazily: one tensor at a time, checked against the config', async () => {
    const dir = await tempDir();
    await initModelDir(dir, 'tiny', 5);
    const model = await openModelDir(dir);
    expect(model.layout).toHaveLength(model.reader.tensorNames.length);
    const router = await model.readTensor(tensorNames.router(1));
    expect(router.shape).toEqual([8, 64]);
    expect(router.data).toEqual(randomWeights(getPreset('tiny'), 5).get(tensorNames.router(1))?.data);
    expect(await errorOf(model.readTensor('nope'))).toBeInstanceOf(MissingTensorError);
    await model.close();
  });

  it('writes from a weight map, sharded on request, and loads it back', async () => {
    const dir = await tempDir();
    const config = getPreset('tiny');
    const weights = randomWeights(config, 8);
    await writeModelDir(dir, config, weights, { maxShardBytes: 200_000 });
    expect((await readdir(dir)).filter((f) => f.startsWith('model-'))).toHaveLength(4);
    expect((await loadModelDir(dir, { verifyDigest: true })).weights).toEqual(weights);
    // Re-writing as a single file removes the old shards and index.
    await writeModelDir(dir, config, weights);
    expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']);
  });

  it('refuses weights that do not match the config', async () => {
    const dir = await tempDir();
    const config = getPreset('tiny');
    const weights = randomWeights(config, 1);
    const missing = new Map(weights);
    missing.delete(tensorNames.finalNorm);
    expect((await errorOf(writeModelDir(dir, config, missing))).message).toBe(
      'missing tensor "model.norm.weight" in the weights to write',
    );
    const extra = new Map(weights).set('model.extra.weight', { shape: [1], data: new Float32Array(1) });
    expect(await errorOf(writeModelDir(dir, config, extra))).toBeInstanceOf(UnexpectedTensorError);
    const wrong = new Map(weights).set(tensorNames.finalNorm, { shape: [65], data: new Float32Array(65) });
    expect((await errorOf(writeModelDir(dir, config, wrong))).message).toBe(
      'tensor "model.norm.weight" has shape [65], expected [64]',
    );
  });

  it('refuses a checkpoint that lacks a tensor, has a wrong shape, or does not match its digest', async () => {
    const dir = await tempDir();
    await initModelDir(dir, 'tiny', 1);
    const tied = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    // The config says tied embeddings: lm_head.weight is then unexpected.
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...tied, tieWordEmbeddings: true }));
    expect(await errorOf(openModelDir(dir))).toBeInstanceOf(UnexpectedTensorError);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...tied, numLayers: 3 }));
    const missing = await errorOf(openModelDir(dir));
    expect(missing.message).toBe(`missing tensor "model.layers.2.input_layernorm.weight" in ${dir}`);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ ...tied, expertFfnSize: 16 }));
    expect(await errorOf(openModelDir(dir))).toBeInstanceOf(TensorShapeError);
    await writeFile(join(dir, 'config.json'), JSON.stringify(tied));
    await writeSafetensors(join(dir, 'model.safetensors'), []);
    const digest = await errorOf(openModelDir(dir, { verifyDigest: true }));
    expect(digest).toBeInstanceOf(ModelDirError);
    expect(digest.message).toMatch(/weights digest [0-9a-f]{64} does not match/);
  });

  it('refuses a directory without config.json or with a foreign format version', async () => {
    const dir = await tempDir();
    expect((await errorOf(readModelDirInfo(dir))).message).toMatch(/cannot read config.json/);
    await initModelDir(dir, 'tiny', 1);
    const json = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ ...json, switchyard: { formatVersion: 2, weightsDigest: 'x' } }),
    );
    expect((await errorOf(readModelDirInfo(dir))).message).toMatch(/formatVersion is 2, expected 1/);
    await rm(join(dir, 'model.safetensors'));
    await writeFile(join(dir, 'config.json'), JSON.stringify(json));
    expect((await errorOf(openModelDir(dir))).message).toMatch(
      /has neither model.safetensors nor model.safetensors.index.json/,
    );
  });
});
