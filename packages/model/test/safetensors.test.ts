import { createHash } from 'node:crypto';
import { open, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { computeWeightsDigest, openCheckpoint, writeCheckpoint } from '../src/checkpoint.ts';
import { f32ToBf16 } from '../src/dtype.ts';
import { MissingTensorError, SafetensorsFormatError, TensorDtypeError, TensorShapeError } from '../src/errors.ts';
import { SafetensorsFile } from '../src/safetensors.ts';
import { writeSafetensors } from '../src/safetensors-writer.ts';
import type { TensorToWrite } from '../src/safetensors-writer.ts';
import { handMadeSafetensors, useTempDirs } from './helpers.ts';

const tempDir = useTempDirs();

const f32Bytes = (...values: number[]) => new Uint8Array(Float32Array.from(values).buffer);

async function errorOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error;
  }
  throw new Error('expected a rejection');
}

const mixed: readonly TensorToWrite[] = [
  { name: 'z.i8', dtype: 'i8', shape: [3], data: Int8Array.from([-128, 0, 127]) },
  { name: 'b.bf16', dtype: 'bf16', shape: [3], data: Float32Array.from([1, 1.00390625, -3.5]) },
  { name: 'a.f32', dtype: 'f32', shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) },
  { name: 'c.f16', dtype: 'f16', shape: [1, 3], data: Float32Array.from([0.5, 65504, 1e-8]) },
];

describe('SafetensorsFile', () => {
  it('reads a file assembled by hand from the format description', async () => {
    const path = join(await tempDir(), 'x.safetensors');
    const header = {
      __metadata__: { format: 'pt' },
      w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      h: { dtype: 'BF16', shape: [1], data_offsets: [8, 10] },
    };
    await writeFile(path, handMadeSafetensors(header, new Uint8Array([...f32Bytes(1.5, -2), 0xc0, 0x40])));
    const file = await SafetensorsFile.open(path);
    expect(file.tensorNames).toEqual(['h', 'w']);
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(Array.from((await file.readF32('w', [2])).data)).toEqual([1.5, -2]);
    expect(Array.from((await file.readF32('h')).data)).toEqual([6]);
    await file.close();
  });

  it('round-trips f32, f16, bf16 and i8, widening the 16-bit floats', async () => {
    const path = join(await tempDir(), 'm.safetensors');
    await writeSafetensors(path, mixed, { metadata: { b: '2', a: '1' } });
    const file = await SafetensorsFile.open(path);
    expect(file.metadata).toEqual({ a: '1', b: '2' });
    expect(await file.readF32('a.f32')).toEqual({ shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) });
    // bf16 keeps 8 mantissa bits: 1.00390625 = 1 + 2^-8 ties to even → 1.
    expect(Array.from((await file.readF32('b.bf16')).data)).toEqual([1, 1, -3.5]);
    expect(Array.from((await file.readF32('c.f16')).data)).toEqual([0.5, 65504, 0]);
    const i8 = await file.read('z.i8');
    expect(i8.dtype).toBe('i8');
    expect(Array.from(i8.data)).toEqual([-128, 0, 127]);
    await file.close();
  });

  it('lays data out aligned: header padded to 8, then f32, 16-bit and 8-bit tensors, names sorted', async () => {
    const path = join(await tempDir(), 'm.safetensors');
    await writeSafetensors(path, mixed);
    const bytes = await readFile(path);
    const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<
      string,
      { data_offsets: number[] }
    >;
    expect(Object.keys(header)).toEqual(['a.f32', 'b.bf16', 'c.f16', 'z.i8']);
    expect(header['a.f32']?.data_offsets).toEqual([0, 16]);
    expect(header['b.bf16']?.data_offsets).toEqual([16, 22]);
    expect(header['c.f16']?.data_offsets).toEqual([22, 28]);
    expect(header['z.i8']?.data_offsets).toEqual([28, 31]);
  });

  it('writes the same bytes whatever the input order, and reports progress up to the file size', async () => {
    const dir = await tempDir();
    const progress: number[] = [];
    const { sizeBytes } = await writeSafetensors(join(dir, 'a.safetensors'), mixed, {
      onProgress: (done, total) => progress.push(done / total),
    });
    await writeSafetensors(join(dir, 'b.safetensors'), [...mixed].reverse());
    expect(await readFile(join(dir, 'a.safetensors'))).toEqual(await readFile(join(dir, 'b.safetensors')));
    expect(progress.at(-1)).toBe(1);
    expect(progress).toEqual([...progress].sort((x, y) => x - y));
    expect((await readFile(join(dir, 'a.safetensors'))).length).toBe(sizeBytes);
    expect(await readdir(dir)).toEqual(['a.safetensors', 'b.safetensors']);
  });

  it('accepts data as a value, a thunk or chunks', async () => {
    const path = join(await tempDir(), 'c.safetensors');
    await writeSafetensors(path, [
      { name: 'thunk', dtype: 'f32', shape: [2], data: async () => Float32Array.from([1, 2]) },
      {
        name: 'chunks',
        dtype: 'bf16',
        shape: [3],
        data: { chunks: () => [Float32Array.from([1]), Float32Array.from([2, 3])] },
      },
    ]);
    const file = await SafetensorsFile.open(path);
    expect(Array.from((await file.readF32('thunk')).data)).toEqual([1, 2]);
    expect(Array.from((await file.readF32('chunks')).data)).toEqual([1, 2, 3]);
    await file.close();
  });

  it('refuses data of the wrong length or kind and leaves no file behind', async () => {
    const dir = await tempDir();
    const path = join(dir, 'bad.safetensors');
    const short = await errorOf(
      writeSafetensors(path, [{ name: 't', dtype: 'f32', shape: [3], data: Float32Array.from([1, 2]) }]),
    );
    expect(short).toBeInstanceOf(TensorShapeError);
    expect(short.message).toBe('tensor "t" has shape [2], expected [3]');
    const kind = await errorOf(
      writeSafetensors(path, [{ name: 't', dtype: 'i8', shape: [1], data: Float32Array.from([1]) }]),
    );
    expect(kind).toBeInstanceOf(TensorDtypeError);
    expect(await readdir(dir)).toEqual([]);
  });

  it('reads tensor bytes on demand, not at open', async () => {
    const path = join(await tempDir(), 'lazy.safetensors');
    await writeSafetensors(path, [{ name: 't', dtype: 'f32', shape: [2], data: Float32Array.from([1, 2]) }]);
    const file = await SafetensorsFile.open(path);
    const info = file.info('t');
    expect(info).toMatchObject({ dtype: 'F32', shape: [2], byteLength: 8 });
    // Change the data on disk after opening: the read sees the new bytes.
    const handle = await open(path, 'r+');
    await handle.write(f32Bytes(7, 8), 0, 8, info?.byteOffset ?? 0);
    await handle.close();
    expect(Array.from((await file.readF32('t')).data)).toEqual([7, 8]);
    await file.close();
  });

  it('names the missing tensor, and both shapes or dtypes on a mismatch', async () => {
    const path = join(await tempDir(), 'e.safetensors');
    await writeSafetensors(path, mixed);
    const file = await SafetensorsFile.open(path);
    const missing = await errorOf(file.readF32('nope'));
    expect(missing).toBeInstanceOf(MissingTensorError);
    expect(missing.message).toBe(`missing tensor "nope" in ${path}`);
    const shape = await errorOf(file.readF32('a.f32', [4]));
    expect(shape.message).toBe('tensor "a.f32" has shape [2, 2], expected [4]');
    const dtype = await errorOf(file.readF32('z.i8'));
    expect(dtype.message).toBe('tensor "z.i8" has dtype i8, expected f32, f16 or bf16');
    await file.close();
  });

  describe('rejects malformed files', () => {
    const cases: readonly (readonly [string, Uint8Array, RegExp])[] = [
      [
        'a header longer than the file',
        handMadeSafetensors({}, new Uint8Array(), 1000),
        /header length 1000 exceeds the file/,
      ],
      [
        'invalid JSON',
        handMadeSafetensors('x', new Uint8Array()).map((b, i) => (i === 8 ? 0x7b : b)),
        /not valid JSON/,
      ],
      [
        'offsets beyond the data',
        handMadeSafetensors({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32Bytes(1)),
        /lie outside the 4-byte data section/,
      ],
      [
        'a byte span that does not fit the shape',
        handMadeSafetensors({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, f32Bytes(1)),
        /spans 4 bytes but F32\[2\] needs 8/,
      ],
      [
        'a hole',
        handMadeSafetensors({ t: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, f32Bytes(1, 2)),
        /a hole in the data section at byte 0/,
      ],
      [
        'an overlap',
        handMadeSafetensors(
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
          },
          f32Bytes(1, 2),
        ),
        /an overlap/,
      ],
      [
        'trailing bytes',
        handMadeSafetensors({ t: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32Bytes(1, 2)),
        /cover 4 bytes but the data section holds 8/,
      ],
      [
        'an unknown dtype',
        handMadeSafetensors({ t: { dtype: 'F7', shape: [1], data_offsets: [0, 4] } }, f32Bytes(1)),
        /unknown dtype "F7"/,
      ],
      ['a file shorter than the length prefix', new Uint8Array(5), /too short/],
    ];
    for (const [what, bytes, message] of cases) {
      it(what, async () => {
        const path = join(await tempDir(), 'bad.safetensors');
        await writeFile(path, bytes);
        const error = await errorOf(SafetensorsFile.open(path));
        expect(error).toBeInstanceOf(SafetensorsFormatError);
        expect(error.message).toMatch(message);
      });
    }
  });
});

describe('checkpoints', () => {
  const tensors: readonly TensorToWrite[] = Array.from({ length: 6 }, (_, i) => ({
    name: `t${i}`,
    dtype: 'f32',
    shape: [4],
    data: Float32Array.from([i, i + 1, i + 2, i + 3]),
  }));

  it('shards by size with an index, reads across shards, and digests all shard bytes in order', async () => {
    const dir = await tempDir();
    const written = await writeCheckpoint(dir, tensors, { maxShardBytes: 40 });
    expect(written.files).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
    ]);
    const index = JSON.parse(await readFile(join(dir, 'model.safetensors.index.json'), 'utf8')) as {
      metadata: unknown;
      weight_map: unknown;
    };
    expect(index.metadata).toEqual({ total_size: 96 });
    expect(index.weight_map).toMatchObject({
      t0: 'model-00001-of-00003.safetensors',
      t5: 'model-00003-of-00003.safetensors',
    });
    const reader = await openCheckpoint(dir);
    expect(reader.tensorNames).toEqual(['t0', 't1', 't2', 't3', 't4', 't5']);
    expect(Array.from((await reader.readF32('t4', [4])).data)).toEqual([4, 5, 6, 7]);
    await reader.close();
    const hash = createHash('sha256');
    for (const f of written.files) hash.update(await readFile(join(dir, f)));
    expect(written.sha256).toBe(hash.digest('hex'));
    expect(await computeWeightsDigest(dir)).toBe(written.sha256);
  });

  it('names a tensor the index maps to a shard that lacks it, and a missing shard', async () => {
    const dir = await tempDir();
    await writeCheckpoint(dir, tensors, { maxShardBytes: 40 });
    const indexPath = join(dir, 'model.safetensors.index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map: Record<string, string> };
    await writeFile(
      indexPath,
      JSON.stringify({ weight_map: { ...index.weight_map, extra: 'model-00001-of-00003.safetensors' } }),
    );
    expect((await errorOf(openCheckpoint(dir))).message).toBe(
      `missing tensor "extra" in ${join(dir, 'model-00001-of-00003.safetensors')}`,
    );
    await writeFile(indexPath, JSON.stringify({ weight_map: { t0: 'gone.safetensors' } }));
    expect((await errorOf(openCheckpoint(dir))).message).toMatch(
      /shard gone.safetensors named in model.safetensors.index.json does not exist/,
    );
    await writeFile(indexPath, JSON.stringify({ weight_map: { t0: '../escape.safetensors' } }));
    expect(await errorOf(openCheckpoint(dir))).toBeInstanceOf(SafetensorsFormatError);
  });

  it('writes one file without an index when everything fits', async () => {
    const dir = await tempDir();
    const written = await writeCheckpoint(dir, [
      { name: 'b', dtype: 'bf16', shape: [2], data: f32ToBf16(Float32Array.from([1, 2])) },
    ]);
    expect(written.files).toEqual(['model.safetensors']);
    expect(await readdir(dir)).toEqual(['model.safetensors']);
  });
});
