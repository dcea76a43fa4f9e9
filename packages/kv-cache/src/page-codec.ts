/**
 * Wire format for moving KV pages between nodes (KvPageService, docs/architecture.md §4 and §6). One contiguous
 * buffer, all integers little-endian:
 *
 *   offset 0   magic    4 bytes  "SYKV"
 *          4   version  u16      2
 *          6   dtype    u16      1 = f32
 *          8   numPages u32
 *         12   directory, numPages × 44 bytes: hash (32 raw bytes), numTokens u32, numElements u32, crc32 u32
 *          …   payload, page by page: tokens (numTokens × u32), then data (numElements × f32)
 *
 * Every section is a multiple of 4 bytes, and the buffer length must equal the sum exactly. A page's
 * `data` layout (layers, K/V, heads) is the engine's business; the codec moves it as opaque floats.
 * The CRC-32 covers the page's payload (tokens then data, as encoded): the block hash names the tokens,
 * not the K/V values, so without it a page store that flipped a bit in memory or on disk would hand out
 * wrong attention state that nothing downstream could notice. zlib's CRC-32 runs at memory speed.
 */
import { crc32 } from 'node:zlib';
import { bytesToHex, hexToBytes } from './block-hash.ts';
import type { BlockHash } from './block-hash.ts';
import { MalformedPagesError, PageChecksumError, UnsupportedPagesVersionError } from './errors.ts';

export interface KvPage {
  readonly hash: BlockHash;
  /** The block's token ids. */
  readonly tokens: Uint32Array;
  /** The block's K/V values. */
  readonly data: Float32Array;
}

const MAGIC = 0x564b5953; // "SYKV" read as a little-endian u32
const VERSION = 2;
const DTYPE_F32 = 1;
const HEADER_BYTES = 12;
const ENTRY_BYTES = 44;
const IS_LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Packs pages into one buffer (see the layout above). */
export function encodePages(pages: readonly KvPage[]): Uint8Array {
  let size = HEADER_BYTES + pages.length * ENTRY_BYTES;
  for (const page of pages) size += 4 * (page.tokens.length + page.data.length);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint16(4, VERSION, true);
  view.setUint16(6, DTYPE_F32, true);
  view.setUint32(8, pages.length, true);
  let offset = HEADER_BYTES + pages.length * ENTRY_BYTES;
  pages.forEach((page, i) => {
    const entry = HEADER_BYTES + i * ENTRY_BYTES;
    bytes.set(hexToBytes(page.hash), entry);
    view.setUint32(entry + 32, page.tokens.length, true);
    view.setUint32(entry + 36, page.data.length, true);
    const start = offset;
    offset = writeWords(bytes, offset, page.tokens);
    offset = writeWords(bytes, offset, page.data);
    view.setUint32(entry + 40, crc32(bytes.subarray(start, offset)), true);
  });
  return bytes;
}

/**
 * Unpacks and validates a buffer from `encodePages`. Returned arrays are fresh copies (they never alias
 * `bytes`, which may be a pooled network buffer). Throws MalformedPagesError, PageChecksumError (a page
 * whose payload does not match its CRC-32) or UnsupportedPagesVersionError.
 */
export function decodePages(bytes: Uint8Array): KvPage[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < HEADER_BYTES)
    throw new MalformedPagesError(`buffer of ${bytes.length} bytes is shorter than the header`);
  if (view.getUint32(0, true) !== MAGIC) throw new MalformedPagesError('bad magic: not a KV page buffer');
  const version = view.getUint16(4, true);
  if (version !== VERSION) throw new UnsupportedPagesVersionError(version);
  const dtype = view.getUint16(6, true);
  if (dtype !== DTYPE_F32) throw new MalformedPagesError(`unknown dtype code ${dtype}`);
  const numPages = view.getUint32(8, true);
  const payloadStart = HEADER_BYTES + numPages * ENTRY_BYTES;
  if (payloadStart > bytes.length)
    throw new MalformedPagesError(`directory of ${numPages} pages exceeds ${bytes.length} bytes`);

  let expected = payloadStart;
  for (let i = 0; i < numPages; i++) {
    const entry = HEADER_BYTES + i * ENTRY_BYTES;
    expected += 4 * (view.getUint32(entry + 32, true) + view.getUint32(entry + 36, true));
    if (expected > bytes.length) break; // keeps the sum exact (far below 2^53)
  }
  if (expected !== bytes.length)
    throw new MalformedPagesError(`directory describes ${expected} bytes, buffer has ${bytes.length}`);

  const pages: KvPage[] = [];
  let offset = payloadStart;
  for (let i = 0; i < numPages; i++) {
    const entry = HEADER_BYTES + i * ENTRY_BYTES;
    const hash = bytesToHex(bytes.subarray(entry, entry + 32));
    const size = 4 * (view.getUint32(entry + 32, true) + view.getUint32(entry + 36, true));
    if (crc32(bytes.subarray(offset, offset + size)) !== view.getUint32(entry + 40, true)) {
      throw new PageChecksumError(hash, i);
    }
    const tokens = new Uint32Array(readWords(bytes, offset, view.getUint32(entry + 32, true)));
    offset += tokens.byteLength;
    const data = new Float32Array(readWords(bytes, offset, view.getUint32(entry + 36, true)));
    offset += data.byteLength;
    pages.push({ hash, tokens, data });
  }
  return pages;
}

/** Copies 4-byte words little-endian into bytes at offset; returns the offset after them. */
function writeWords(bytes: Uint8Array, offset: number, words: Uint32Array | Float32Array): number {
  const raw = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  if (IS_LITTLE_ENDIAN_HOST) {
    bytes.set(raw, offset);
  } else {
    for (let i = 0; i < raw.length; i += 4) {
      for (let b = 0; b < 4; b++) bytes[offset + i + b] = raw[i + 3 - b] ?? 0;
    }
  }
  return offset + raw.length;
}

/** A fresh, aligned ArrayBuffer holding `count` 4-byte words read little-endian from bytes at offset. */
function readWords(bytes: Uint8Array, offset: number, count: number): ArrayBuffer {
  // NOTE: Uint8Array's slice, not the receiver's: a Node Buffer (what gRPC hands over) slices as a view
  // into its shared pool, whose `.buffer` would be the whole pool.
  const copy = Uint8Array.prototype.slice.call(bytes, offset, offset + count * 4);
  if (!IS_LITTLE_ENDIAN_HOST) {
    for (let i = 0; i < copy.length; i += 4) copy.subarray(i, i + 4).reverse();
  }
  return copy.buffer;
}
