import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { asBlockHash, bytesToHex, hashBlock, hashBlocks, kvNamespace, kvNamespaceString } from '../src/index.ts';
import type { KvNamespaceParams } from '../src/index.ts';

interface VectorCase {
  readonly namespace: string;
  readonly namespace_sha256: string;
  readonly block_size: number;
  readonly tokens: number[];
  readonly block_hashes: string[];
}

// The KV hashing spec's test vectors (docs/architecture.md §6), kept byte for byte as published.
const vectorsUrl = new URL('./fixtures/kv-block-hash.json', import.meta.url);
const vectors = JSON.parse(readFileSync(vectorsUrl, 'utf8')) as { cases: VectorCase[] };

function parseNamespace(namespace: string): KvNamespaceParams {
  const fields = new Map(
    namespace
      .split('|')
      .slice(1)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  return {
    modelId: fields.get('model') ?? '',
    weightsDigestHex: fields.get('weights') ?? '',
    kvDtype: fields.get('dtype') ?? '',
    blockSize: Number(fields.get('block')),
    salt: fields.get('salt') ?? '',
  };
}

const tinyNs = kvNamespace({
  modelId: 'tiny',
  weightsDigestHex: '0'.repeat(64),
  kvDtype: 'f32',
  blockSize: 4,
  salt: '',
});

describe('chained block hashes', () => {
  it('has test vectors to check', () => {
    expect(vectors.cases.length).toBe(7);
  });

  it.each(vectors.cases.map((c, i) => [i, c] as const))('reproduces test vector %i exactly', (_, c) => {
    const params = parseNamespace(c.namespace);
    expect(params.blockSize).toBe(c.block_size);
    expect(kvNamespaceString(params)).toBe(c.namespace);
    const ns = kvNamespace(params);
    expect(bytesToHex(ns)).toBe(c.namespace_sha256);
    expect(hashBlocks(ns, c.tokens, c.block_size)).toEqual(c.block_hashes);
  });

  it('hashes incrementally, one newly full block at a time, to the same chain', () => {
    const tokens = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const [h0, h1] = hashBlocks(tinyNs, tokens, 4);
    expect(hashBlock(tinyNs, tokens, 4)).toBe(h0);
    expect(hashBlock(asBlockHash(h0 ?? ''), tokens, 4, 4)).toBe(h1);
    expect(hashBlocks(tinyNs, tokens, 4, 1, h0)).toEqual([h1]);
  });

  it('requires the parent hash when starting past block 0', () => {
    expect(() => hashBlocks(tinyNs, [1, 2, 3, 4, 5, 6, 7, 8], 4, 1)).toThrow(RangeError);
  });

  it('rejects tokens that are not uint32', () => {
    expect(() => hashBlocks(tinyNs, [1, 2, 3, -1], 4)).toThrow(RangeError);
    expect(() => hashBlocks(tinyNs, [1, 2, 3, 1.5], 4)).toThrow(RangeError);
    expect(() => hashBlocks(tinyNs, [1, 2, 3, 2 ** 32], 4)).toThrow(RangeError);
  });

  it('accepts only 64 lower-case hex characters as a block hash', () => {
    expect(() => asBlockHash('AB'.repeat(32))).toThrow(RangeError);
    expect(() => asBlockHash('ab'.repeat(31))).toThrow(RangeError);
    expect(asBlockHash('ab'.repeat(32))).toBe('ab'.repeat(32));
  });
});
