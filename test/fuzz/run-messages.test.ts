/**
 * Fuzz: gRPC `Run` frames against an expert worker process (the tiny model, four experts hosted), all on
 * one long-lived stream: valid messages with one part replaced by anything, and raw bytes that are not a
 * message at all. Every frame is answered (an output or an error status, under its correlation id), the
 * stream survives them all, and a valid message is served at the end by the same stream and process.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { credentials, Client, Metadata, status, type ClientDuplexStream } from '@grpc/grpc-js';
import { initModelDir, getPreset } from '@switchyard/model';
import { connectExpertClient } from '@switchyard/rpc';
import { switchyardProtos, type WireRunRequest, type WireRunResponse } from '@switchyard/rpc/internal';
import { startWorker, type ManagedProcess } from '@switchyard/launcher';
import { FUZZ_RUNS, FUZZ_TIMEOUT_MS } from './runs.ts';

const config = getPreset('tiny');
const H = config.hiddenSize;
let root = '';
let worker: ManagedProcess & { address: string };
let raw: Client;
let stream: ClientDuplexStream<Buffer, WireRunResponse>;
const waiting = new Map<number, (r: WireRunResponse) => void>();
const unmatched: WireRunResponse[] = [];
const streamErrors: Error[] = [];
/** Answers received, whatever their id, and who waits for that count to reach a number. */
let numAnswers = 0;
const countWaiters: { n: number; resolve: () => void }[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-fuzz-run-'));
  await initModelDir(join(root, 'tiny'), 'tiny', 1);
  worker = await startWorker(join(root, 'tiny'), 'fuzzed', ['--max-tokens-per-run', '16']);
  const typed = await connectExpertClient(worker.address, { deadlineMs: 10_000 });
  await typed.load({ experts: [0, 1, 2, 3].map((expertId) => ({ layer: 0, expertId })), placementRevision: 1 });
  typed.close();
  const { run } = switchyardProtos().expert;
  raw = new Client(worker.address, credentials.createInsecure());
  stream = raw.makeBidiStreamRequest(run.path, (bytes: Buffer) => bytes, run.responseDeserialize, new Metadata());
  stream.on('error', (err: Error) => streamErrors.push(err));
  stream.on('data', (r: WireRunResponse) => {
    numAnswers++;
    for (const w of countWaiters.filter((x) => numAnswers >= x.n)) {
      countWaiters.splice(countWaiters.indexOf(w), 1);
      w.resolve();
    }
    const resolve = waiting.get(Number(r.correlationId));
    if (resolve) {
      waiting.delete(Number(r.correlationId));
      resolve(r);
    } else unmatched.push(r);
  });
}, 60_000);

afterAll(async () => {
  if (stream) {
    const closed = new Promise((resolve) => stream.on('close', resolve));
    stream.end();
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 5_000))]);
  }
  raw?.close();
  await worker?.kill();
  await rm(root, { recursive: true, force: true });
});

const f32 = (values: ArrayLike<number>) => Buffer.from(new Float32Array(values).buffer);
const i32 = (values: ArrayLike<number>) => Buffer.from(new Int32Array(values).buffer);

function valid(
  correlationId: number,
  n: number,
  hidden: readonly number[],
  experts: readonly number[],
): WireRunRequest {
  return {
    correlationId,
    layer: 0,
    outputDtype: 'DTYPE_F32',
    traceparent: '',
    hidden: {
      dtype: 'DTYPE_F32',
      shape: [n, H],
      data: f32(Array.from({ length: n * H }, (_, i) => hidden[i % hidden.length] ?? 0)),
    },
    routes: {
      offsets: i32(Array.from({ length: n + 1 }, (_, i) => 2 * i)),
      expertIds: i32(Array.from({ length: 2 * n }, (_, i) => experts[i % experts.length] ?? 0)),
      weights: f32(new Array<number>(2 * n).fill(0.5)),
    },
  };
}

const bytes = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
const mutation = fc.oneof(
  fc.record({ layer: fc.oneof(fc.integer({ min: -2, max: 5 }), fc.constant(2 ** 31 - 1)) }),
  fc.record({ outputDtype: fc.constantFrom('DTYPE_F32', 'DTYPE_BF16', 'DTYPE_I8', 'DTYPE_UNSPECIFIED') }),
  fc.record({
    hidden: fc.oneof(
      fc.constant(null),
      fc.record({
        dtype: fc.constantFrom('DTYPE_F32', 'DTYPE_BF16', 'DTYPE_I8', 'DTYPE_UNSPECIFIED'),
        shape: fc.array(fc.integer({ min: 0, max: 70 }), { maxLength: 3 }),
        data: bytes,
      }),
    ),
  }),
  fc.record({
    routes: fc.oneof(fc.constant(null), fc.record({ offsets: bytes, expertIds: bytes, weights: bytes })),
  }),
);
/** A frame: a valid message (with a NaN, an unhosted expert, or a replaced part now and then), or raw bytes. */
const frame = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.integer({ min: 1, max: 4 }),
        fc.array(
          fc.oneof(
            { weight: 20, arbitrary: fc.float({ min: -4, max: 4, noNaN: true }) },
            { weight: 1, arbitrary: fc.constantFrom(Number.NaN, Infinity) },
          ),
          { minLength: 1, maxLength: 4 },
        ),
        fc.array(
          fc.oneof(
            { weight: 8, arbitrary: fc.integer({ min: 0, max: 3 }) },
            { weight: 1, arbitrary: fc.integer({ min: -1, max: 9 }) },
          ),
          { minLength: 1, maxLength: 3 },
        ),
        fc.option(mutation, { freq: 2 }),
      )
      .map(([n, hidden, experts, change]) => ({ kind: 'message' as const, n, hidden, experts, change })),
  },
  { weight: 1, arbitrary: bytes.map((b) => ({ kind: 'bytes' as const, b })) },
);

let nextId = 1;

/** Resolves once `n` answers have arrived in all (a raw frame's id is whatever protobuf makes of it). */
function answers(n: number): Promise<void> {
  if (numAnswers >= n) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${numAnswers} answers of ${n} within 10 s`)), 10_000);
    countWaiters.push({
      n,
      resolve: () => {
        clearTimeout(timer);
        resolve();
      },
    });
  });
}

function answer(id: number): Promise<WireRunResponse> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to correlation id ${id} within 10 s`)), 10_000);
    waiting.set(id, (r) => {
      clearTimeout(timer);
      resolve(r);
    });
  });
}

describe(`fuzz: gRPC Run frames (${FUZZ_RUNS} cases)`, () => {
  it(
    'answers every frame under its correlation id, keeps the stream, and serves a valid message after',
    async () => {
      const { run } = switchyardProtos().expert;
      const outcomes = new Map<string, number>();
      const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
      let numSent = 0;
      await fc.assert(
        fc.asyncProperty(frame, async (f) => {
          const id = nextId++;
          if (f.kind === 'bytes') {
            // The id first, then anything: protobuf may read another id further on (the last one wins),
            // or nothing valid at all (then the answer carries the leading id). Either way: one answer.
            stream.write(Buffer.concat([Buffer.from([0x08]), varint(id), f.b]));
            await answers(++numSent);
            count('raw bytes answered');
            return;
          }
          const message = { ...valid(id, f.n, f.hidden, f.experts), ...(f.change ?? {}) } as WireRunRequest;
          let payload: Buffer;
          try {
            payload = run.requestSerialize(message);
          } catch {
            count('unencodable (client side)');
            return;
          }
          const pending = answer(id);
          stream.write(payload);
          numSent++;
          const r = await pending;
          count(r.result === 'output' ? 'output' : `status ${r.error?.code ?? '?'}`);
          if (r.result !== 'output') expect([status.INVALID_ARGUMENT, status.NOT_FOUND]).toContain(r.error?.code);
        }),
        { numRuns: FUZZ_RUNS },
      );
      process.stderr.write(`fuzz run: ${FUZZ_RUNS} frames, outcomes ${JSON.stringify(Object.fromEntries(outcomes))}\n`);
      expect(outcomes.get('output') ?? 0).toBeGreaterThan(0);
      expect(outcomes.get(`status ${status.INVALID_ARGUMENT}`) ?? 0).toBeGreaterThan(0);
      const id = nextId++;
      const last = answer(id);
      stream.write(run.requestSerialize(valid(id, 1, [0.25], [0, 3])));
      expect((await last).result).toBe('output');
      expect(worker.child.exitCode).toBeNull();
      expect(streamErrors).toEqual([]);
      // Answers under an id nobody waited for come only from raw frames whose bytes named another id.
      expect(unmatched.every((r) => r.result !== 'output')).toBe(true);
    },
    FUZZ_TIMEOUT_MS,
  );
});

function varint(value: number): Buffer {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}
