/**
 * The KV bulk data plane's wire format (pure: no I/O; docs/architecture.md §6). FetchPages over a plain
 * TCP connection, beside KvPageService: gRPC stays the control plane and the fallback, page bytes go
 * over this. All integers are little-endian.
 *
 *   request  (client → server)  "SYKB" u8 version=1  u8 kind=1 (fetch)  u16 0  u32 bodyBytes
 *                               body: UTF-8 JSON {"namespace": <64 hex>, "blockHashes": [<64 hex>, …]}
 *   frames   (server → client)  u8 type  u8 0  u16 0  u32 count  u32 length, then
 *     EXTENT (1)  count = blocks, length = data bytes: count × 32-byte block hashes, then the data
 *     END    (2)  count = EXTENT frames sent, length = 0: the answer is complete
 *     ERROR  (3)  count = gRPC status code, length = message bytes: the UTF-8 message
 *
 * One request at a time per connection; an answer is EXTENT* then END or ERROR, after which the next
 * request may follow. A request whose header is malformed loses the framing: the server answers ERROR
 * and closes the connection. A well framed but invalid body gets ERROR and the connection stays usable.
 */
import { DataLossError, InvalidArgumentError } from './errors.ts';
import type { FetchPagesRequest } from './kv-messages.ts';

export const BULK_MAGIC = 'SYKB';
export const BULK_VERSION = 1;
export const BULK_KIND_FETCH = 1;
export const REQUEST_HEADER_BYTES = 12;
export const FRAME_HEADER_BYTES = 12;
export const HASH_BYTES = 32;
/** Blocks one request may name: 16 384 blocks of 16 tokens is a 262 144-token prefix. */
export const MAX_REQUEST_HASHES = 16_384;
/** A request body holding MAX_REQUEST_HASHES hashes fits with room to spare. */
export const MAX_REQUEST_BODY_BYTES = 2 * 1024 * 1024;
export const MAX_ERROR_MESSAGE_BYTES = 4096;
/** Largest single EXTENT frame (its data length is a u32). */
export const MAX_FRAME_DATA_BYTES = 0xffff_ffff;

/** TCP keepalive probes start after this much silence (both ends), so a vanished peer is noticed. */
export const KEEPALIVE_MS = 10_000;

export const FRAME_EXTENT = 1;
export const FRAME_END = 2;
export const FRAME_ERROR = 3;

export type BulkFrameHeader =
  | { readonly type: typeof FRAME_EXTENT; readonly numBlocks: number; readonly dataBytes: number }
  | { readonly type: typeof FRAME_END; readonly numExtents: number }
  | { readonly type: typeof FRAME_ERROR; readonly statusCode: number; readonly messageBytes: number };

const HEX_64 = /^[0-9a-f]{64}$/;

/** The request frame: header and JSON body. Throws InvalidArgumentError for a request the server would refuse. */
export function encodeRequest(request: FetchPagesRequest): Buffer {
  validateBulkRequest(request);
  const body = Buffer.from(JSON.stringify({ namespace: request.namespace, blockHashes: request.blockHashes }));
  if (body.byteLength > MAX_REQUEST_BODY_BYTES) throw new InvalidArgumentError('KV bulk request body is too large');
  const header = Buffer.alloc(REQUEST_HEADER_BYTES);
  header.write(BULK_MAGIC, 0, 'latin1');
  header.writeUInt8(BULK_VERSION, 4);
  header.writeUInt8(BULK_KIND_FETCH, 5);
  header.writeUInt32LE(body.byteLength, 8);
  return Buffer.concat([header, body]);
}

/** The body length a request header announces. Throws InvalidArgumentError (the framing is then lost). */
export function parseRequestHeader(header: Buffer): number {
  if (header.toString('latin1', 0, 4) !== BULK_MAGIC) throw new InvalidArgumentError('not a KV bulk request');
  const version = header.readUInt8(4);
  if (version !== BULK_VERSION) throw new InvalidArgumentError(`KV bulk protocol version ${version} is not supported`);
  const kind = header.readUInt8(5);
  if (kind !== BULK_KIND_FETCH) throw new InvalidArgumentError(`KV bulk request kind ${kind} is not supported`);
  if (header.readUInt16LE(6) !== 0) throw new InvalidArgumentError('KV bulk request header has reserved bits set');
  const bodyBytes = header.readUInt32LE(8);
  if (bodyBytes === 0 || bodyBytes > MAX_REQUEST_BODY_BYTES)
    throw new InvalidArgumentError(`KV bulk request body of ${bodyBytes} bytes (1–${MAX_REQUEST_BODY_BYTES})`);
  return bodyBytes;
}

/** The request a body holds. Throws InvalidArgumentError unless it is exactly the documented shape. */
export function parseRequestBody(body: Buffer): FetchPagesRequest {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new InvalidArgumentError('KV bulk request body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new InvalidArgumentError('KV bulk request body must be an object');
  const keys = Object.keys(value).sort();
  if (keys.length !== 2 || keys[0] !== 'blockHashes' || keys[1] !== 'namespace')
    throw new InvalidArgumentError('KV bulk request body must have exactly "namespace" and "blockHashes"');
  const { namespace, blockHashes } = value as { namespace: unknown; blockHashes: unknown };
  if (typeof namespace !== 'string' || !Array.isArray(blockHashes))
    throw new InvalidArgumentError('KV bulk request: namespace must be a string, blockHashes an array');
  const request: FetchPagesRequest = { namespace, blockHashes: blockHashes as string[] };
  validateBulkRequest(request);
  return request;
}

/** A namespace and each hash are 64 lower-case hex digits; at most MAX_REQUEST_HASHES hashes. */
export function validateBulkRequest(request: FetchPagesRequest): void {
  if (!HEX_64.test(request.namespace))
    throw new InvalidArgumentError('KV bulk request: namespace must be 64 lower-case hex digits');
  if (request.blockHashes.length > MAX_REQUEST_HASHES)
    throw new InvalidArgumentError(
      `KV bulk request names ${request.blockHashes.length} blocks (at most ${MAX_REQUEST_HASHES})`,
    );
  for (const hash of request.blockHashes) {
    if (typeof hash !== 'string' || !HEX_64.test(hash))
      throw new InvalidArgumentError('KV bulk request: every block hash must be 64 lower-case hex digits');
  }
}

/** An EXTENT frame's header and hashes (its data follows as the caller's own buffers). */
export function encodeExtentHeader(blockHashes: readonly string[], dataBytes: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + HASH_BYTES * blockHashes.length);
  writeFrameHeader(out, FRAME_EXTENT, blockHashes.length, dataBytes);
  blockHashes.forEach((hash, i) => {
    if (!HEX_64.test(hash)) throw new InvalidArgumentError('a served KV block hash is not 64 lower-case hex digits');
    out.write(hash, FRAME_HEADER_BYTES + HASH_BYTES * i, 'hex');
  });
  return out;
}

export function encodeEndFrame(numExtents: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  writeFrameHeader(out, FRAME_END, numExtents, 0);
  return out;
}

/** An ERROR frame with a gRPC status code and its details (cut to MAX_ERROR_MESSAGE_BYTES). */
export function encodeErrorFrame(statusCode: number, details: string): Buffer {
  const message = Buffer.from(details).subarray(0, MAX_ERROR_MESSAGE_BYTES);
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + message.byteLength);
  writeFrameHeader(out, FRAME_ERROR, statusCode, message.byteLength);
  message.copy(out, FRAME_HEADER_BYTES);
  return out;
}

/** Throws DataLossError for a header that breaks the protocol or the request's bounds. */
export function parseFrameHeader(header: Buffer): BulkFrameHeader {
  const type = header.readUInt8(0);
  if (header.readUInt8(1) !== 0 || header.readUInt16LE(2) !== 0)
    throw new DataLossError('KV bulk frame header has reserved bits set');
  const count = header.readUInt32LE(4);
  const length = header.readUInt32LE(8);
  switch (type) {
    case FRAME_EXTENT:
      if (count === 0 || count > MAX_REQUEST_HASHES || length === 0 || length % count !== 0)
        throw new DataLossError(`KV bulk extent of ${length} bytes cannot hold ${count} equal pages`);
      return { type, numBlocks: count, dataBytes: length };
    case FRAME_END:
      if (length !== 0) throw new DataLossError('KV bulk end frame with a length');
      return { type, numExtents: count };
    case FRAME_ERROR:
      if (length > MAX_ERROR_MESSAGE_BYTES) throw new DataLossError(`KV bulk error message of ${length} bytes`);
      return { type, statusCode: count, messageBytes: length };
    default:
      throw new DataLossError(`KV bulk frame of unknown type ${type}`);
  }
}

/** The hex hashes of an EXTENT frame's hash block. */
export function decodeHashes(block: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at < block.byteLength; at += HASH_BYTES) out.push(block.toString('hex', at, at + HASH_BYTES));
  return out;
}

function writeFrameHeader(out: Buffer, type: number, count: number, length: number): void {
  out.writeUInt8(type, 0);
  out.writeUInt8(0, 1);
  out.writeUInt16LE(0, 2);
  out.writeUInt32LE(count, 4);
  out.writeUInt32LE(length, 8);
}
