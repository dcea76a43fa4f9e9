import { describe, expect, it } from 'vitest';
import { DataLossError, InvalidArgumentError, ResourceExhaustedError } from '../src/index.ts';
import { ExtentAssembler, chunksOfExtent, coalesceExtents } from '../src/kv-extents.ts';
import type { KvExtent } from '../src/kv-extents.ts';

const KIB = 1024;

function extent(hashes: string[], pageBytes: number, fill = 1): KvExtent {
  return { blockHashes: hashes, data: Buffer.alloc(hashes.length * pageBytes, fill) };
}

async function collect(source: AsyncIterable<KvExtent>): Promise<KvExtent[]> {
  const out: KvExtent[] = [];
  for await (const item of source) out.push(item);
  return out;
}

describe('coalesceExtents', () => {
  it('merges runs of small extents until each reaches the minimum, in order', async () => {
    const small = ['a', 'b', 'c', 'd', 'e'].map((hash, i) => extent([hash], 300 * KIB, i));
    const merged = await collect(coalesceExtents(small, 1024 * KIB));
    expect(merged.map((e) => e.blockHashes)).toEqual([['a', 'b', 'c', 'd'], ['e']]);
    expect(merged[0]?.data.byteLength).toBe(1200 * KIB);
    expect(merged[0]?.data[300 * KIB]).toBe(1);
  });

  it('passes a large extent through untouched and never merges across page sizes', async () => {
    const big = extent(['x', 'y'], 1024 * KIB);
    const out = await collect(
      coalesceExtents([extent(['a'], 10 * KIB), big, extent(['b'], 10 * KIB), extent(['c'], 20 * KIB)], 1024 * KIB),
    );
    expect(out.map((e) => e.blockHashes)).toEqual([['a'], ['x', 'y'], ['b'], ['c']]);
    expect(out[1]).toBe(big);
  });

  it('rejects an extent whose bytes do not split into equal pages', async () => {
    const bad: KvExtent = { blockHashes: ['a', 'b'], data: Buffer.alloc(3) };
    await expect(collect(coalesceExtents([bad], 1024))).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('chunks and reassembly', () => {
  it('cuts an extent into chunks no larger than the limit and reassembles it exactly', () => {
    const data = Buffer.alloc(10 * KIB);
    for (let i = 0; i < data.length; i++) data[i] = i % 251;
    const chunks = chunksOfExtent({ blockHashes: ['a', 'b'], data }, 0, 4 * KIB, 'ns');
    expect(chunks.length).toBe(3);
    expect(chunks.every((chunk) => chunk.data.byteLength <= 4 * KIB)).toBe(true);
    expect(chunks[0]).toMatchObject({
      namespace: 'ns',
      blockHashes: ['a', 'b'],
      extentSizeBytes: 10 * KIB,
      offsetBytes: 0,
    });
    expect(chunks[1]).toMatchObject({ namespace: '', blockHashes: [], extentSizeBytes: 0 });

    const assembler = new ExtentAssembler(1024 * KIB);
    const done = chunks.map((chunk) => assembler.accept(chunk));
    assembler.finish();
    expect(done.slice(0, 2)).toEqual([undefined, undefined]);
    expect(done[2]?.blockHashes).toEqual(['a', 'b']);
    expect(Buffer.compare(Buffer.from(done[2]?.data ?? []), data)).toBe(0);
  });

  it('reports a gap, a missing tail or an oversized transfer', () => {
    const [first, second, third] = chunksOfExtent(extent(['a'], 8 * KIB), 0, 4 * KIB);
    if (first === undefined || second === undefined || third === undefined) throw new Error('expected three chunks');

    const gap = new ExtentAssembler(1024 * KIB);
    gap.accept(first);
    expect(() => gap.accept(third)).toThrow(DataLossError);

    const cut = new ExtentAssembler(1024 * KIB);
    cut.accept(first);
    cut.accept(second);
    expect(() => cut.finish()).toThrow(DataLossError);

    expect(() => new ExtentAssembler(KIB).accept(first)).toThrow(ResourceExhaustedError);
  });
});
