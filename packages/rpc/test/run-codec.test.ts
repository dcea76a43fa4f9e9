import { loadSync } from '@grpc/proto-loader';
import type { MethodDefinition } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { encodeBf16, encodeF32 } from '../src/index.ts';
import { PROTO_DIR } from '../src/protos.ts';
import { serializeRunRequest, serializeRunResponse } from '../src/run-codec.ts';
import type { WireRunRequest, WireRunResponse } from '../src/wire-types.ts';

/** protobuf.js's own codec for Run, as proto-loader builds it (the reference). */
function referenceRun(): MethodDefinition<WireRunRequest, WireRunResponse> {
  const definition = loadSync('switchyard/v1/expert.proto', {
    includeDirs: [PROTO_DIR],
    keepCase: false,
    longs: Number,
    enums: String,
    bytes: Buffer,
    defaults: true,
    oneofs: true,
  });
  const service = definition['switchyard.v1.ExpertService'] as Record<
    string,
    MethodDefinition<WireRunRequest, WireRunResponse>
  >;
  const run = service['Run'];
  if (run === undefined) throw new Error('no Run');
  return run;
}

const reference = referenceRun();
const GRPC_FRAME_HEADER_BYTES = 5;

function frameOffsetOf(message: Buffer, data: Buffer): number {
  return GRPC_FRAME_HEADER_BYTES + message.indexOf(data);
}

function request(correlationId: number, numTokens: number, traceparent = ''): WireRunRequest {
  const hidden = new Float32Array(numTokens * 8).map((_, i) => i + 0.5);
  return {
    correlationId,
    layer: correlationId % 3,
    hidden: encodeF32(hidden, [numTokens, 8]),
    routes: {
      offsets: Buffer.from(Int32Array.from({ length: numTokens + 1 }, (_, t) => t).buffer),
      expertIds: Buffer.from(new Int32Array(numTokens).fill(3).buffer),
      weights: Buffer.from(new Float32Array(numTokens).fill(0.25).buffer),
    },
    outputDtype: correlationId % 2 === 0 ? 'DTYPE_F32' : 'DTYPE_BF16',
    traceparent,
  };
}

describe('Run codec', () => {
  it('encodes requests that protobuf.js decodes to the same message, with the data 4-byte aligned in the frame', () => {
    for (const correlationId of [1, 127, 128, 300, 16_384, 2 ** 40]) {
      for (const numTokens of [1, 15, 16, 17, 200]) {
        const message = request(correlationId, numTokens, correlationId > 200 ? '00-abc-01' : '');
        const bytes = serializeRunRequest(message);
        const decoded = reference.requestDeserialize(bytes);
        const expected = reference.requestDeserialize(reference.requestSerialize(message));
        const { padding: _padding, ...hidden } = decoded.hidden as NonNullable<typeof decoded.hidden> & {
          padding: Buffer;
        };
        expect({ ...decoded, hidden }).toEqual({ ...expected, hidden: { ...expected.hidden, padding: undefined } });
        expect(frameOffsetOf(bytes, message.hidden?.data ?? Buffer.alloc(0)) % 4).toBe(0);
      }
    }
  });

  it('encodes output and error responses that protobuf.js decodes to the same message', () => {
    const output: WireRunResponse = {
      correlationId: 99,
      output: encodeBf16(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]),
      computeTimeUs: 1234,
    };
    const bytes = serializeRunResponse(output);
    const decoded = reference.responseDeserialize(bytes);
    expect(decoded).toMatchObject({
      correlationId: 99,
      computeTimeUs: 1234,
      result: 'output',
      output: { shape: [2, 3], dtype: 'DTYPE_BF16' },
    });
    expect(decoded.output?.data.equals(output.output?.data ?? Buffer.alloc(0))).toBe(true);
    expect(frameOffsetOf(bytes, output.output?.data ?? Buffer.alloc(0)) % 4).toBe(0);

    const error: WireRunResponse = { correlationId: 7, error: { code: 3, message: 'bad tensor ✗' }, computeTimeUs: 0 };
    expect(reference.responseDeserialize(serializeRunResponse(error))).toEqual(
      reference.responseDeserialize(reference.responseSerialize(error)),
    );
  });
});
