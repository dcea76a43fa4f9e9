/**
 * Why TokenRoutes travels as bytes: encode + decode time of the routes CSR as packed repeated
 * fields versus little-endian bytes fields, through the same loader the services use.
 * Run: npx node packages/rpc/bench/routes-encoding.ts
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSync } from '@grpc/proto-loader';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

const PROTO = `syntax = "proto3";
package bench;
message Repeated { repeated int32 offsets = 1; repeated int32 expert_ids = 2; repeated float weights = 3; }
message Bytes { bytes offsets = 1; bytes expert_ids = 2; bytes weights = 3; }
`;

interface Codec {
  serialize(message: object): Buffer;
  deserialize(bytes: Buffer): object;
}

function loadCodecs(): { repeated: Codec; bytes: Codec } {
  const dir = mkdtempSync(join(tmpdir(), 'routes-bench-'));
  try {
    writeFileSync(join(dir, 'bench.proto'), PROTO);
    const definition = loadSync('bench.proto', {
      includeDirs: [dir],
      longs: Number,
      enums: String,
      bytes: Buffer,
      defaults: true,
    });
    const codecOf = (name: string): Codec => {
      const type = definition[name] as MessageTypeDefinition<object, object>;
      return { serialize: type.serialize as Codec['serialize'], deserialize: type.deserialize as Codec['deserialize'] };
    };
    return { repeated: codecOf('bench.Repeated'), bytes: codecOf('bench.Bytes') };
  } finally {
    rmSync(dir, { recursive: true });
  }
}

function routesOf(numTokens: number, topK: number) {
  const offsets = new Int32Array(numTokens + 1).map((_, t) => t * topK);
  const expertIds = new Int32Array(numTokens * topK).map((_, i) => (i * 7) % 64);
  const weights = new Float32Array(numTokens * topK).map((_, i) => 1 / (1 + (i % 8)));
  return { offsets, expertIds, weights };
}

function timeUs(iterations: number, body: () => void): number {
  for (let i = 0; i < 50; i++) body();
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) body();
  return Number(process.hrtime.bigint() - start) / 1e3 / iterations;
}

const view = (a: Int32Array | Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const { repeated, bytes } = loadCodecs();
const results = [];
for (const numTokens of [8, 64, 512, 4096]) {
  const routes = routesOf(numTokens, 8);
  const iterations = numTokens >= 4096 ? 200 : 2000;
  const repeatedUs = timeUs(iterations, () => {
    const wire = repeated.serialize({
      offsets: Array.from(routes.offsets),
      expertIds: Array.from(routes.expertIds),
      weights: Array.from(routes.weights),
    });
    const message = repeated.deserialize(wire) as { offsets: number[]; expertIds: number[]; weights: number[] };
    Int32Array.from(message.offsets);
    Int32Array.from(message.expertIds);
    Float32Array.from(message.weights);
  });
  const bytesUs = timeUs(iterations, () => {
    const wire = bytes.serialize({
      offsets: view(routes.offsets),
      expertIds: view(routes.expertIds),
      weights: view(routes.weights),
    });
    const message = bytes.deserialize(wire) as { offsets: Buffer; expertIds: Buffer; weights: Buffer };
    // The decoder copies when a field is not 4-byte aligned, as the rpc package does.
    for (const field of [message.offsets, message.expertIds, message.weights]) {
      if (field.byteOffset % 4 === 0) new Int32Array(field.buffer, field.byteOffset, field.byteLength / 4);
      else new Int32Array(new Uint8Array(field).buffer);
    }
  });
  results.push({ numTokens, topK: 8, repeatedUs: +repeatedUs.toFixed(2), bytesUs: +bytesUs.toFixed(2) });
}
console.log(JSON.stringify({ bench: 'routes-encoding', results }, null, 2));
