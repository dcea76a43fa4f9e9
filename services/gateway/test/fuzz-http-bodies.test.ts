/**
 * Fuzz: OpenAI request bodies against the HTTP server (a real listening socket, the tiny model's
 * engine). Whatever the body, the answer is a 2xx, a 4xx with OpenAI's error shape, or a deliberate
 * 503 — never a 500, a crash or a hang — and the server still serves a valid request afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { getPreset, randomWeights } from '@switchyard/model';
import { EngineLoop, type EngineBundle } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import { createHttpServer } from '../src/http/server.ts';
import { LocalBackend } from '../src/local-backend.ts';

/** 1,000 cases in `npm test`; `npm run fuzz` sets SWITCHYARD_FUZZ_RUNS=10000 (test/fuzz/runs.ts does the same). */
const FUZZ_RUNS = Number(process.env['SWITCHYARD_FUZZ_RUNS'] ?? '1000');
const FUZZ_TIMEOUT_MS = 120_000 + FUZZ_RUNS * 60;

const config = getPreset('tiny');
let bundle: EngineBundle;
let loop: EngineLoop;
let app: FastifyInstance;
let baseUrl = '';

beforeAll(async () => {
  bundle = await createEngine(
    { config, weights: randomWeights(config, 5), weightsDigest: 'ef'.repeat(32) },
    {
      expertDtype: 'fp32',
      denseDtype: 'fp32',
      blockSize: 4,
      scheduler: { maxBatchedTokens: 256, maxRunningSequences: 16 },
    },
  );
  loop = new EngineLoop(bundle.engine);
  app = createHttpServer({ backend: new LocalBackend(bundle, loop, 64), bodyLimitBytes: 64 * 1024 });
  baseUrl = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app?.close();
  await loop?.stop();
  await bundle?.close();
});

const ALLOWED = new Set([200, 400, 404, 413, 415, 422, 429, 503]);

/** Small numbers mostly, with the edges a schema must hold: negatives, fractions, huge, non-numbers. */
const number = fc.oneof(
  fc.integer({ min: -2, max: 4 }),
  fc.double({ noNaN: false }),
  fc.constantFrom(0, 1, 2 ** 31, 2 ** 53, -1e9, 1e308, 0.5),
  fc.string({ maxLength: 4 }),
  fc.boolean(),
  fc.constant(null),
);
const tokenIds = fc.array(fc.oneof(fc.integer({ min: -3, max: 300 }), fc.constantFrom(1e9, 1.5, 2 ** 53)), {
  maxLength: 6,
});
const prompt = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  tokenIds,
  fc.array(tokenIds, { maxLength: 3 }),
  fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }),
  fc.anything({ maxDepth: 2 }),
);
const message = fc.record(
  {
    role: fc.oneof(fc.constantFrom('system', 'user', 'assistant', 'developer', 'tool'), fc.string({ maxLength: 6 })),
    content: fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.array(fc.record({ type: fc.constantFrom('text', 'image_url'), text: fc.string({ maxLength: 10 }) }), {
        maxLength: 2,
      }),
      fc.anything({ maxDepth: 1 }),
    ),
  },
  { requiredKeys: [] },
);
const sampling = {
  model: fc.oneof(fc.constant('tiny'), fc.string({ maxLength: 8 }), fc.anything({ maxDepth: 1 })),
  max_tokens: fc.oneof(fc.integer({ min: -1, max: 3 }), number),
  temperature: number,
  top_p: number,
  top_k: number,
  seed: number,
  n: fc.oneof(fc.integer({ min: -1, max: 18 }), number),
  stop: fc.oneof(fc.string({ maxLength: 4 }), fc.array(fc.string({ maxLength: 4 }), { maxLength: 6 }), number),
  stream: fc.oneof(fc.boolean(), number),
  stream_options: fc.oneof(fc.record({ include_usage: fc.oneof(fc.boolean(), number) }), number),
  ignore_eos: fc.oneof(fc.boolean(), number),
  user: fc.oneof(fc.string({ maxLength: 8 }), number),
};
/** Completions' logprobs, chat's logprobs and top_logprobs, echo: in range, at the edges, and past them. */
const completionChoices = {
  echo: fc.oneof(fc.boolean(), number),
  logprobs: fc.oneof(fc.integer({ min: -1, max: 7 }), number),
  top_logprobs: fc.oneof(fc.integer({ min: -1, max: 3 }), number),
};
const chatChoices = {
  logprobs: fc.oneof(fc.boolean(), number),
  top_logprobs: fc.oneof(fc.integer({ min: -1, max: 22 }), number),
  echo: fc.oneof(fc.boolean(), number),
};
const completionBody = fc.record({ ...sampling, prompt, ...completionChoices }, { requiredKeys: [] });
const chatBody = fc.record(
  {
    ...sampling,
    ...chatChoices,
    messages: fc.oneof(fc.array(message, { maxLength: 3 }), fc.anything({ maxDepth: 1 })),
  },
  { requiredKeys: [] },
);
/** A valid request with, most of the time, one field replaced by anything at all. */
const mutated = <T extends Record<string, unknown>>(
  valid: fc.Arbitrary<T>,
  fields: Record<string, fc.Arbitrary<unknown>>,
): fc.Arbitrary<string> =>
  fc
    .tuple(valid, fc.option(fc.constantFrom(...Object.keys(fields)), { freq: 3 }), fc.anything({ maxDepth: 1 }))
    .chain(([base, key]) =>
      key === null
        ? fc.constant(JSON.stringify(base))
        : (fields[key] ?? fc.anything()).map((value) => JSON.stringify({ ...base, [key]: value })),
    );
const validSampling = {
  model: fc.constant('tiny'),
  max_tokens: fc.integer({ min: 1, max: 3 }),
  temperature: fc.constantFrom(0, 0.7),
  stream: fc.boolean(),
};
/** Valid choice parameters, each present or not: n, and the logprobs of each API (echo with max_tokens 0 too). */
const validN = { n: fc.integer({ min: 1, max: 3 }) };
const validCompletion = fc
  .record(
    {
      ...validSampling,
      ...validN,
      max_tokens: fc.integer({ min: 0, max: 3 }),
      echo: fc.boolean(),
      logprobs: fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constant(null)),
      prompt: fc.oneof(
        fc.string({ minLength: 1, maxLength: 20 }),
        fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 }),
      ),
    },
    { requiredKeys: ['model', 'prompt', 'max_tokens', 'temperature', 'stream'] },
  )
  .map((b) => (b.max_tokens === 0 ? { ...b, echo: true } : b));
const validChat = fc
  .record({
    ...validSampling,
    ...validN,
    logprobs: fc.boolean(),
    top_logprobs: fc.integer({ min: 0, max: 20 }),
    messages: fc.array(
      fc.record({ role: fc.constantFrom('system', 'user', 'assistant'), content: fc.string({ maxLength: 20 }) }),
      {
        minLength: 1,
        maxLength: 3,
      },
    ),
  })
  .map((b) => (b.logprobs ? b : { ...b, top_logprobs: 0 }));

/** What goes on the wire: a JSON body (mostly shaped like a request), or raw text that may not be JSON. */
const body = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.tuple(
      fc.constant('/v1/completions'),
      mutated(validCompletion, { ...sampling, prompt, ...completionChoices }),
    ),
  },
  {
    weight: 3,
    arbitrary: fc.tuple(
      fc.constant('/v1/chat/completions'),
      mutated(validChat, { ...sampling, ...chatChoices, messages: fc.array(message) }),
    ),
  },
  {
    weight: 4,
    arbitrary: fc.tuple(
      fc.constant('/v1/completions'),
      completionBody.map((b) => JSON.stringify(b)),
    ),
  },
  {
    weight: 3,
    arbitrary: fc.tuple(
      fc.constant('/v1/chat/completions'),
      chatBody.map((b) => JSON.stringify(b)),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(
      fc.constantFrom('/v1/completions', '/v1/chat/completions'),
      fc.oneof(fc.string({ maxLength: 60 }), fc.json({ maxDepth: 3 })),
    ),
  },
);

describe(`fuzz: HTTP request bodies (${FUZZ_RUNS} cases)`, () => {
  it(
    'answers every body with 2xx, 4xx or 503 in OpenAI shape, never 5xx, and keeps serving',
    async () => {
      const seen = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(body, async ([path, text]) => {
          const res = await fetch(`${baseUrl}${path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: text,
            signal: AbortSignal.timeout(30_000),
          });
          const answer = await res.text();
          seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
          expect(
            ALLOWED.has(res.status),
            `${res.status} for ${path} ${text.slice(0, 200)}: ${answer.slice(0, 200)}`,
          ).toBe(true);
          if (res.status >= 400) {
            const json = JSON.parse(answer) as { error?: { message?: unknown; type?: unknown } };
            expect(typeof json.error?.message).toBe('string');
            expect(typeof json.error?.type).toBe('string');
          }
        }),
        { numRuns: FUZZ_RUNS },
      );
      process.stderr.write(`fuzz http: ${FUZZ_RUNS} bodies, statuses ${JSON.stringify(Object.fromEntries(seen))}\n`);
      expect(seen.get(200) ?? 0).toBeGreaterThan(0);
      const ok = await fetch(`${baseUrl}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', prompt: 'still here', max_tokens: 2 }),
      });
      expect(ok.status).toBe(200);
    },
    FUZZ_TIMEOUT_MS,
  );
});
