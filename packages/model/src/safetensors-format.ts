/**
 * The safetensors container format, as pure functions over the header:
 *
 *   [u64 little-endian N][N bytes of UTF-8 JSON header, space-padded][data bytes]
 *
 * The header maps each tensor name to `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to
 * the start of the data) plus an optional `__metadata__` string map. Like the reference (Rust)
 * implementation we require the tensors to cover the data exactly, with no holes or overlaps, and we
 * lay tensors out by decreasing element size, then name, after a header padded to 8 bytes, so every
 * tensor is naturally aligned.
 */

import { SafetensorsFormatError } from './errors.ts';
import type { DType } from './types.ts';
import { numElements } from './weight-layout.ts';

/** Header dtype names (all those the reference implementation knows). */
export type SafetensorsDtype =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'F8_E4M3'
  | 'F8_E5M2'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL';

const ELEMENT_SIZE: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

const TO_HEADER: Readonly<Record<DType, SafetensorsDtype>> = { f32: 'F32', f16: 'F16', bf16: 'BF16', i8: 'I8' };

/** The reference implementation refuses headers above 100 MB; so do we. */
export const MAX_HEADER_BYTES = 100_000_000;
export const HEADER_ALIGNMENT = 8;

export function toHeaderDtype(dtype: DType): SafetensorsDtype {
  return TO_HEADER[dtype];
}

/** Our dtype for a header dtype, or undefined when we cannot load that dtype. */
export function fromHeaderDtype(dtype: SafetensorsDtype): DType | undefined {
  switch (dtype) {
    case 'F32':
      return 'f32';
    case 'F16':
      return 'f16';
    case 'BF16':
      return 'bf16';
    case 'I8':
      return 'i8';
    default:
      return undefined;
  }
}

export function elementSize(dtype: SafetensorsDtype): number {
  return ELEMENT_SIZE[dtype];
}

function isHeaderDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(ELEMENT_SIZE, value);
}

export interface HeaderEntry {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Offsets relative to the start of the data section. */
  readonly begin: number;
  readonly end: number;
}

export interface ParsedHeader {
  /** Entries in data order (ascending offsets). */
  readonly entries: readonly HeaderEntry[];
  readonly metadata: Readonly<Record<string, string>>;
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function parseMetadata(value: unknown, file: string): Record<string, string> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw new SafetensorsFormatError(file, '__metadata__ is not an object');
  const metadata: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw new SafetensorsFormatError(file, `__metadata__.${key} is not a string`);
    metadata[key] = item;
  }
  return metadata;
}

function parseEntry(name: string, value: unknown, dataLength: number, file: string): HeaderEntry {
  if (!isRecord(value)) throw new SafetensorsFormatError(file, `header entry "${name}" is not an object`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (!isHeaderDtype(dtype))
    throw new SafetensorsFormatError(file, `tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every(isIndex)) {
    throw new SafetensorsFormatError(file, `tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !isIndex(offsets[0]) || !isIndex(offsets[1])) {
    throw new SafetensorsFormatError(file, `tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataLength) {
    throw new SafetensorsFormatError(
      file,
      `tensor "${name}" data_offsets [${begin}, ${end}] lie outside the ${dataLength}-byte data section`,
    );
  }
  const expectedBytes = numElements(shape) * ELEMENT_SIZE[dtype];
  if (end - begin !== expectedBytes) {
    throw new SafetensorsFormatError(
      file,
      `tensor "${name}" spans ${end - begin} bytes but ${dtype}[${shape.join(', ')}] needs ${expectedBytes}`,
    );
  }
  return { name, dtype, shape, begin, end };
}

/** Parses and validates a header against the size of the data section that follows it. */
export function parseHeader(json: string, dataLength: number, file: string): ParsedHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (cause) {
    throw new SafetensorsFormatError(file, 'header is not valid JSON', { cause });
  }
  if (!isRecord(raw)) throw new SafetensorsFormatError(file, 'header is not a JSON object');
  const metadata = parseMetadata(raw['__metadata__'], file);
  const entries = Object.entries(raw)
    .filter(([name]) => name !== '__metadata__')
    .map(([name, value]) => parseEntry(name, value, dataLength, file))
    .sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const entry of entries) {
    if (entry.begin !== cursor) {
      const what = entry.begin > cursor ? 'a hole' : 'an overlap';
      throw new SafetensorsFormatError(
        file,
        `${what} in the data section at byte ${cursor} (tensor "${entry.name}" starts at ${entry.begin})`,
      );
    }
    cursor = entry.end;
  }
  if (cursor !== dataLength) {
    throw new SafetensorsFormatError(file, `tensors cover ${cursor} bytes but the data section holds ${dataLength}`);
  }
  return { entries, metadata };
}

export interface TensorDescriptor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export interface Layout {
  /** The 8-byte length prefix, the padded JSON header. */
  readonly headerBytes: Uint8Array;
  /** Tensors in data order with their offsets relative to the data section. */
  readonly entries: readonly (TensorDescriptor & { readonly begin: number; readonly end: number })[];
  readonly dataBytes: number;
  readonly fileBytes: number;
}

function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Lays tensors out deterministically: data in (element size descending, name ascending) order, header
 * keys sorted by name with `__metadata__` (sorted keys, omitted when empty) first.
 */
export function layOut(tensors: readonly TensorDescriptor[], metadata: Readonly<Record<string, string>> = {}): Layout {
  const sorted = [...tensors].sort(
    (a, b) => elementSize(toHeaderDtype(b.dtype)) - elementSize(toHeaderDtype(a.dtype)) || compareNames(a.name, b.name),
  );
  let cursor = 0;
  const entries = sorted.map((t) => {
    const begin = cursor;
    cursor += numElements(t.shape) * elementSize(toHeaderDtype(t.dtype));
    return { ...t, begin, end: cursor };
  });
  const header: Record<string, unknown> = {};
  const metaKeys = Object.keys(metadata).sort(compareNames);
  if (metaKeys.length > 0) header['__metadata__'] = Object.fromEntries(metaKeys.map((k) => [k, metadata[k]]));
  for (const e of [...entries].sort((a, b) => compareNames(a.name, b.name))) {
    header[e.name] = { dtype: toHeaderDtype(e.dtype), shape: e.shape, data_offsets: [e.begin, e.end] };
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil((8 + json.length) / HEADER_ALIGNMENT) * HEADER_ALIGNMENT - 8;
  const headerBytes = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(headerBytes.buffer).setBigUint64(0, BigInt(padded), true);
  headerBytes.set(json, 8);
  return { headerBytes, entries, dataBytes: cursor, fileBytes: headerBytes.length + cursor };
}
