import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials, Client, Metadata, status } from '@grpc/grpc-js';
import { initModelDir, getPreset } from '@switchyard/model';
import { connectExpertClient, type ExpertStreamClient } from '@switchyard/rpc';
import { switchyardProtos, type DType, type WireRunRequest, type WireRunResponse } from '@switchyard/rpc/internal';
import { startWorker, type ManagedProcess } from '@switchyard/launcher';

const config = getPreset('tiny');
const H = config.hiddenSize;
const MAX_TOKENS = 8;
let root = '';
let worker: ManagedProcess & { address: string };
let client: ExpertStreamClient;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-worker-'));
  await initModelDir(join(root, 'tiny'), 'tiny', 1);
  worker = await startWorker(join(root, 'tiny'), 'validating', ['--max-tokens-per-run', String(MAX_TOKENS)]);
  client = await connectExpertClient(worker.address, { deadlineMs: 10_000 });
  await client.load({ experts: [0, 1, 2, 3].map((expertId) => ({ layer: 0, expertId })), placementRevision: 1 });
}, 60_000);

afterAll(async () => {
  client?.close();
  await worker?.kill();
  await rm(root, { recursive: true, force: true });
});

const f32 = (values: ArrayLike<number>) => Buffer.from(new Float32Array(values).buffer);
const i32 = (values: ArrayLike<number>) => Buffer.from(new Int32Array(values).buffer);

/** A Run message as it travels, so the test can break any part of it. */
function message(
  correlationId: number,
  over: { layer?: number; numTokens?: number; expert?: number; dtype?: DType; dataBytes?: number } = {},
): WireRunRequest {
  const n = over.numTokens ?? 2;
  const floats = n * H;
  return {
    correlationId,
    layer: over.layer ?? 0,
    outputDtype: 'DTYPE_F32' as const,
    traceparent: '',
    hidden: { dtype: over.dtype ?? 'DTYPE_F32', shape: [n, H], data: Buffer.alloc(over.dataBytes ?? floats * 4, 1) },
    routes: {
      offsets: i32(Array.from({ length: n + 1 }, (_, i) => i)),
      expertIds: i32(new Array<number>(n).fill(over.expert ?? 1)),
      weights: f32(new Array<number>(n).fill(0.5)),
    },
  };
}

/** The message with one activation (token 0, feature 3) replaced. */
function withHidden(m: WireRunRequest, value: number): WireRunRequest {
  if (m.hidden === null) throw new Error('no hidden');
  const data = Buffer.from(m.hidden.data);
  data.writeFloatLE(value, 3 * 4);
  return { ...m, hidden: { ...m.hidden, data } };
}

/** The message with its route weights replaced. */
function withWeights(m: WireRunRequest, weights: readonly number[]): WireRunRequest {
  if (m.routes === null) throw new Error('no routes');
  return { ...m, routes: { ...m.routes, weights: f32(weights) } };
}

/** One token routed to `numPairs` experts (all hosted ones, repeated). */
function manyPairs(correlationId: number, numPairs: number): WireRunRequest {
  const m = message(correlationId, { numTokens: 1 });
  return {
    ...m,
    routes: {
      offsets: i32([0, numPairs]),
      expertIds: i32(Array.from({ length: numPairs }, (_, i) => i % 4)),
      weights: f32(new Array<number>(numPairs).fill(0.1)),
    },
  };
}

describe('expert worker validation', () => {
  it('answers each malformed Run message with INVALID_ARGUMENT and keeps serving the same stream', async () => {
    const { run } = switchyardProtos().expert;
    const raw = new Client(worker.address, credentials.createInsecure());
    try {
      const stream = raw.makeBidiStreamRequest(run.path, run.requestSerialize, run.responseDeserialize, new Metadata());
      const responses: WireRunResponse[] = [];
      stream.on('data', (r: WireRunResponse) => responses.push(r));
      const cases = [
        message(1, { dataBytes: 2 * H * 4 - 4 }), // wrong shape: bytes do not match [2, H]
        message(2, { layer: 7 }), // unknown layer
        message(3, { expert: 6 }), // expert not hosted here
        message(7, { expert: 99 }), // no such expert in the model
        message(4, { dtype: 'DTYPE_I8', dataBytes: 2 * H }), // wrong dtype
        message(5, { numTokens: MAX_TOKENS + 1 }), // oversized
        withHidden(message(8), Number.NaN), // a NaN activation
        withHidden(message(9), Number.POSITIVE_INFINITY), // an infinite activation
        withWeights(message(10), [0.5, Number.NEGATIVE_INFINITY]), // an infinite gate weight
        manyPairs(11, config.numExpertsPerToken + 1), // more pairs for one token than the model's top-k
        message(6), // valid
      ];
      for (const m of cases) stream.write(m);
      stream.end();
      await once(stream, 'end');
      const byId = new Map(responses.map((r) => [Number(r.correlationId), r]));
      for (const id of [1, 2, 4, 5, 8, 9, 10, 11]) {
        expect(byId.get(id)?.error?.code, `message ${id}`).toBe(status.INVALID_ARGUMENT);
        expect(byId.get(id)?.error?.message.length).toBeGreaterThan(0);
      }
      // A well-formed message for an expert this worker does not host is NOT_FOUND (the gateway reloads on it).
      expect(byId.get(3)?.error?.code).toBe(status.NOT_FOUND);
      expect(byId.get(2)?.error?.message).toMatch(/layer 7 does not exist/);
      expect(byId.get(3)?.error?.message).toMatch(/expert 6 of layer 0 is not hosted/);
      expect(byId.get(5)?.error?.message).toMatch(/exceed the limit of 8/);
      expect(byId.get(7)?.error?.code).toBe(status.INVALID_ARGUMENT);
      expect(byId.get(7)?.error?.message).toMatch(/expert 99 does not exist/);
      expect(byId.get(8)?.error?.message).toMatch(/hidden\[0, 3\] is not finite/);
      expect(byId.get(10)?.error?.message).toMatch(/weights\[1\] is not finite/);
      expect(byId.get(11)?.error?.message).toMatch(/the model routes a token to/);
      expect(byId.get(6)?.result).toBe('output');
    } finally {
      raw.close();
    }
  });

  it('answers an undecodable Run frame with INVALID_ARGUMENT under its correlation id and keeps the stream', async () => {
    const { run } = switchyardProtos().expert;
    const raw = new Client(worker.address, credentials.createInsecure());
    try {
      const stream = raw.makeBidiStreamRequest(
        run.path,
        (bytes: Buffer) => bytes,
        run.responseDeserialize,
        new Metadata(),
      );
      const responses: WireRunResponse[] = [];
      stream.on('data', (r: WireRunResponse) => responses.push(r));
      // correlation_id 21, then field 3 (hidden) claiming 1,000 bytes that never come.
      stream.write(Buffer.from([0x08, 21, 0x1a, 0xe8, 0x07, 0x01, 0x02]));
      stream.write(run.requestSerialize(message(22)));
      stream.write(Buffer.from([0xff, 0xff, 0xff]));
      stream.write(run.requestSerialize(message(23)));
      stream.end();
      await once(stream, 'end');
      const byId = new Map(responses.map((r) => [Number(r.correlationId), r]));
      expect(byId.get(21)?.error?.code).toBe(status.INVALID_ARGUMENT);
      expect(byId.get(21)?.error?.message).toMatch(/not a valid message/);
      expect(byId.get(0)?.error?.code).toBe(status.INVALID_ARGUMENT);
      expect(byId.get(22)?.result).toBe('output');
      expect(byId.get(23)?.result).toBe('output');
    } finally {
      raw.close();
    }
  });

  it('serves a valid message through the typed client, and the worker process is still up', async () => {
    const hidden = new Float32Array(H).fill(0.25);
    const reply = await client.run({
      layer: 0,
      hiddenSize: H,
      hidden,
      routes: {
        numTokens: 1,
        offsets: new Int32Array([0, 2]),
        expertIds: new Int32Array([0, 3]),
        weights: new Float32Array([0.5, 0.5]),
      },
    });
    expect(reply.output).toHaveLength(H);
    expect(reply.output.some((v) => v !== 0)).toBe(true);
    expect(worker.child.exitCode).toBeNull();
  });
});
