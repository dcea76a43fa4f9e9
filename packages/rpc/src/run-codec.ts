/**
 * Hand-written protobuf encoders for RunExpertsRequest and RunExpertsResponse, the two messages of
 * the data plane. They produce the bytes protobuf.js would (decoding still goes through it), with
 * two differences:
 *  - the hidden/output Tensor is the LAST field and its `data` is the last field of the Tensor, and
 *  - a `padding` field (Tensor field 15, ignored by receivers) makes `data` start 4-byte aligned
 *    within the gRPC frame (5-byte length prefix + message).
 * NOTE: grpc-js receives each frame into a fresh buffer starting at an aligned address, so an
 * aligned frame offset lets the receiver view the floats in place (decodeF32 copies otherwise).
 * Keep in sync with tensor.proto and expert.proto; run-codec.test.ts checks both against protobuf.js.
 */
import type { DType, Tensor, WireRunRequest, WireRunResponse, WireTokenRoutes } from './wire-types.ts';

const GRPC_FRAME_HEADER_BYTES = 5;
const VARINT = 0;
const LEN = 2;

const DTYPE_NUMBER: Readonly<Record<DType, number>> = {
  DTYPE_UNSPECIFIED: 0,
  DTYPE_F32: 1,
  DTYPE_BF16: 2,
  DTYPE_F16: 3,
  DTYPE_I8: 4,
  DTYPE_I32: 5,
  DTYPE_I64: 6,
};

export function serializeRunRequest(message: WireRunRequest): Buffer {
  const { routes, hidden } = message;
  const routesBytes = routes === null ? 0 : routesSize(routes);
  const prefix =
    varintField(1, message.correlationId) +
    varintField(2, message.layer) +
    varintField(5, DTYPE_NUMBER[message.outputDtype]) +
    stringField(6, message.traceparent) +
    (routes === null ? 0 : lenFieldSize(4, routesBytes));
  const layout = hidden === null ? undefined : tensorLayout(hidden, prefix);
  const writer = new Writer(prefix + (layout === undefined ? 0 : layout.fieldBytes));
  writer.varintField(1, message.correlationId);
  writer.varintField(2, message.layer);
  writer.varintField(5, DTYPE_NUMBER[message.outputDtype]);
  writer.stringField(6, message.traceparent);
  if (routes !== null) {
    writer.tag(4, LEN).varint(routesBytes);
    writer.bytesField(1, routes.offsets).bytesField(2, routes.expertIds).bytesField(3, routes.weights);
  }
  if (hidden !== null && layout !== undefined) writer.tensorField(3, hidden, layout);
  return writer.finish();
}

export function serializeRunResponse(message: WireRunResponse): Buffer {
  const { output, error } = message;
  const errorBytes =
    error === undefined || error === null ? 0 : varintField(1, error.code) + stringField(2, error.message);
  const prefix =
    varintField(1, message.correlationId) +
    varintField(4, message.computeTimeUs) +
    (error === undefined || error === null ? 0 : lenFieldSize(3, errorBytes));
  const layout = output === undefined || output === null ? undefined : tensorLayout(output, prefix);
  const writer = new Writer(prefix + (layout === undefined ? 0 : layout.fieldBytes));
  writer.varintField(1, message.correlationId);
  writer.varintField(4, message.computeTimeUs);
  if (error !== undefined && error !== null) {
    writer.tag(3, LEN).varint(errorBytes);
    writer.varintField(1, error.code).stringField(2, error.message);
  }
  if (output !== undefined && output !== null && layout !== undefined) writer.tensorField(2, output, layout);
  return writer.finish();
}

interface TensorLayout {
  /** Bytes of the whole Tensor field (tag, length, body). */
  readonly fieldBytes: number;
  readonly bodyBytes: number;
  /** Size of the padding field, 0 for none (a present field takes ≥ 2 bytes: tag and length). */
  readonly paddingFieldBytes: number;
}

/** Picks the padding that puts the tensor's data 4-byte aligned in the frame, given what precedes it. */
function tensorLayout(tensor: Tensor, prefixBytes: number): TensorLayout {
  const headBytes = varintField(1, DTYPE_NUMBER[tensor.dtype]) + packedSize(2, tensor.shape);
  const dataHeadBytes = 1 + varintSize(tensor.data.byteLength);
  for (const paddingFieldBytes of [0, 2, 3, 4, 5, 6, 7, 8]) {
    const bodyBytes = headBytes + paddingFieldBytes + dataHeadBytes + tensor.data.byteLength;
    const fieldHeadBytes = 1 + varintSize(bodyBytes);
    const dataOffset =
      GRPC_FRAME_HEADER_BYTES + prefixBytes + fieldHeadBytes + headBytes + paddingFieldBytes + dataHeadBytes;
    if (dataOffset % 4 === 0) return { fieldBytes: fieldHeadBytes + bodyBytes, bodyBytes, paddingFieldBytes };
  }
  const bodyBytes = headBytes + dataHeadBytes + tensor.data.byteLength;
  return { fieldBytes: 1 + varintSize(bodyBytes) + bodyBytes, bodyBytes, paddingFieldBytes: 0 };
}

function routesSize(routes: WireTokenRoutes): number {
  return bytesFieldSize(1, routes.offsets) + bytesFieldSize(2, routes.expertIds) + bytesFieldSize(3, routes.weights);
}

function varintSize(value: number): number {
  let size = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) size++;
  return size;
}

/** proto3 omits default values: a zero varint or an empty string/bytes takes no bytes. */
function varintField(field: number, value: number): number {
  return value === 0 ? 0 : varintSize(field << 3) + varintSize(value);
}

function lenFieldSize(field: number, length: number): number {
  return varintSize(field << 3) + varintSize(length) + length;
}

function bytesFieldSize(field: number, bytes: Uint8Array): number {
  return bytes.byteLength === 0 ? 0 : lenFieldSize(field, bytes.byteLength);
}

function stringField(field: number, text: string): number {
  return text.length === 0 ? 0 : lenFieldSize(field, Buffer.byteLength(text));
}

function packedSize(field: number, values: readonly number[]): number {
  if (values.length === 0) return 0;
  return lenFieldSize(
    field,
    values.reduce((sum, value) => sum + varintSize(value), 0),
  );
}

/** Writes fields in order into one exactly sized buffer. */
class Writer {
  readonly #buffer: Buffer;
  #position = 0;

  constructor(sizeBytes: number) {
    this.#buffer = Buffer.allocUnsafe(sizeBytes);
  }

  tag(field: number, wireType: number): this {
    return this.varint((field << 3) | wireType);
  }

  varint(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`cannot encode ${value} as a varint`);
    let rest = value;
    while (rest >= 0x80) {
      this.#buffer[this.#position++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.#buffer[this.#position++] = rest;
    return this;
  }

  varintField(field: number, value: number): this {
    return value === 0 ? this : this.tag(field, VARINT).varint(value);
  }

  bytesField(field: number, bytes: Uint8Array): this {
    if (bytes.byteLength === 0) return this;
    this.tag(field, LEN).varint(bytes.byteLength);
    this.#buffer.set(bytes, this.#position);
    this.#position += bytes.byteLength;
    return this;
  }

  stringField(field: number, text: string): this {
    if (text.length === 0) return this;
    const length = Buffer.byteLength(text);
    this.tag(field, LEN).varint(length);
    this.#position += this.#buffer.write(text, this.#position, 'utf8');
    return this;
  }

  tensorField(field: number, tensor: Tensor, layout: TensorLayout): this {
    this.tag(field, LEN).varint(layout.bodyBytes);
    this.varintField(1, DTYPE_NUMBER[tensor.dtype]);
    if (tensor.shape.length > 0) {
      this.tag(2, LEN).varint(tensor.shape.reduce((sum, value) => sum + varintSize(value), 0));
      for (const dim of tensor.shape) this.varint(dim);
    }
    if (layout.paddingFieldBytes > 0) {
      const paddingBytes = layout.paddingFieldBytes - 2; // tag 15 and a one-byte length
      this.tag(15, LEN).varint(paddingBytes);
      this.#buffer.fill(0, this.#position, this.#position + paddingBytes);
      this.#position += paddingBytes;
    }
    this.tag(3, LEN).varint(tensor.data.byteLength);
    this.#buffer.set(tensor.data, this.#position);
    this.#position += tensor.data.byteLength;
    return this;
  }

  finish(): Buffer {
    if (this.#position !== this.#buffer.byteLength) {
      throw new Error(`run-codec wrote ${this.#position} of ${this.#buffer.byteLength} bytes`);
    }
    return this.#buffer;
  }
}
