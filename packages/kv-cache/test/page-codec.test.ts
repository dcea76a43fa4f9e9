import { describe, expect, it } from 'vitest';
import {
  MalformedPagesError,
  PageChecksumError,
  UnsupportedPagesVersionError,
  asBlockHash,
  decodePages,
  encodePages,
} from '../src/index.ts';
import type { KvPage } from '../src/index.ts';

const pages: KvPage[] = [
  {
    hash: asBlockHash('01'.repeat(32)),
    tokens: new Uint32Array([1, 2, 3, 0xffffffff]),
    data: new Float32Array([0.5, -1, 3.25, 1e-30, -0, 7]),
  },
  { hash: asBlockHash('fe'.repeat(32)), tokens: new Uint32Array([9, 9, 9, 9]), data: new Float32Array(0) },
];

function decodeOf(bytes: Uint8Array): unknown[] {
  return decodePages(bytes).map((p) => ({ hash: p.hash, tokens: Array.from(p.tokens), data: Array.from(p.data) }));
}

describe('page codec', () => {
  it('round-trips pages through one contiguous buffer', () => {
    const bytes = encodePages(pages);
    expect(bytes.length).toBe(12 + 2 * 44 + 4 * (4 + 6 + 4 + 0));
    expect(Array.from(bytes.subarray(0, 4))).toEqual([0x53, 0x59, 0x4b, 0x56]);
    expect(decodeOf(bytes)).toEqual(
      pages.map((p) => ({ hash: p.hash, tokens: Array.from(p.tokens), data: Array.from(p.data) })),
    );
    expect(decodeOf(encodePages([]))).toEqual([]);
  });

  it('decodes from an unaligned view and returns copies that do not alias the input', () => {
    const bytes = encodePages(pages);
    const padded = new Uint8Array(bytes.length + 1);
    padded.set(bytes, 1);
    const decoded = decodePages(padded.subarray(1));
    expect(Array.from(decoded[0]?.data ?? [])).toEqual(Array.from(pages[0]?.data ?? []));
    padded.fill(0);
    expect(decoded[0]?.tokens[3]).toBe(0xffffffff);
  });

  it('rejects a truncated buffer, a trailing byte and a bad magic as malformed', () => {
    const bytes = encodePages(pages);
    const malformed = { name: 'MalformedPagesError', code: 'malformed-kv-pages' };
    expect(() => decodePages(bytes.subarray(0, bytes.length - 1))).toThrow(expect.objectContaining(malformed));
    expect(() => decodePages(bytes.subarray(0, 8))).toThrow(MalformedPagesError);
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    expect(() => decodePages(longer)).toThrow(MalformedPagesError);
    const badMagic = bytes.slice();
    badMagic[0] = 0;
    expect(() => decodePages(badMagic)).toThrow(MalformedPagesError);
  });

  it('rejects a directory that claims more data than the buffer holds', () => {
    const corrupt = encodePages(pages);
    new DataView(corrupt.buffer).setUint32(12 + 36, 0xffffffff, true);
    expect(() => decodePages(corrupt)).toThrow(MalformedPagesError);
    const tooManyPages = encodePages(pages);
    new DataView(tooManyPages.buffer).setUint32(8, 1_000_000, true);
    expect(() => decodePages(tooManyPages)).toThrow(MalformedPagesError);
  });

  it('rejects another format version and an unknown dtype with distinct errors', () => {
    const v2 = encodePages(pages);
    v2[4] = 3;
    expect(() => decodePages(v2)).toThrow(
      expect.objectContaining({
        name: 'UnsupportedPagesVersionError',
        code: 'unsupported-kv-pages-version',
        version: 3,
      }),
    );
    expect(() => decodePages(v2)).toThrow(UnsupportedPagesVersionError);
    const dtype = encodePages(pages);
    dtype[6] = 9;
    expect(() => decodePages(dtype)).toThrow(MalformedPagesError);
  });

  it('names the page whose payload a flipped bit corrupted, in the tokens or in the K/V data', () => {
    const bytes = encodePages(pages);
    const payload = 12 + 2 * 44;
    const dataByte = payload + 4 * 4 + 2 * 4; // third float of the first page
    bytes[dataByte] = (bytes[dataByte] ?? 0) ^ 0x01;
    expect(() => decodePages(bytes)).toThrow(
      expect.objectContaining({ name: 'PageChecksumError', code: 'kv-page-checksum', pageIndex: 0 }),
    );
    const tokens = encodePages(pages);
    const secondPageToken = payload + 4 * (4 + 6);
    tokens[secondPageToken] = (tokens[secondPageToken] ?? 0) ^ 0x80;
    expect(() => decodePages(tokens)).toThrow(PageChecksumError);
  });
});

describe('page codec with Node buffers', () => {
  it('decodes pages from a Buffer view into a shared pool (as gRPC delivers them)', () => {
    const bytes = encodePages(pages);
    const pool = Buffer.alloc(8192);
    pool.set(bytes, 100);
    const view = pool.subarray(100, 100 + bytes.length);
    expect(decodeOf(view)).toEqual(
      pages.map((p) => ({ hash: p.hash, tokens: Array.from(p.tokens), data: Array.from(p.data) })),
    );
    expect(decodePages(view)[0]?.tokens.length).toBe(4);
  });
});
