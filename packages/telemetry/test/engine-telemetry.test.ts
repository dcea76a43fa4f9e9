import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPreset, randomWeights } from '@switchyard/model';
import { resolveSamplingParams, type EngineBundle, type ScheduledChunk, type TokenEvent } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import type { TokenRoutes } from '@switchyard/routing';
import { EngineTelemetry } from '../src/engine-telemetry.ts';
import * as N from '../src/names.ts';
import { startTelemetry, type Telemetry } from '../src/sdk.ts';
import { readTraceFile } from '../src/span-file-exporter.ts';
import { numberAttribute, type SpanRecord } from '../src/span-record.ts';
import { buildTokenReport, isRequestSpan, isStepSpan } from '../src/token-report.ts';
import { analytic } from './tiny-analytic.ts';

const config = getPreset('tiny', { sharedExpertFfnSize: 32 });
const model = { config, weights: randomWeights(config, 3), weightsDigest: 'cd'.repeat(32) };
const prompts = ['Mixture of experts route tokens', 'a', 'Mixture of experts route tokens'];

const KV_TRANSFER = {
  outcome: 'fetched',
  source: 'engine',
  localTokens: 0,
  fetchedTokens: 4,
  fetchedPages: 1,
  recomputedTokens: 27,
  bytes: 1234,
  durationMs: 3.5,
} as const;

interface Run {
  readonly spans: SpanRecord[];
  readonly finals: Map<string, TokenEvent>;
  /** `${seqId}@${position}` → per layer, the experts the router chose (sorted). */
  readonly routed: Map<string, number[][]>;
  readonly prometheus: string;
}

/** Runs the real engine with the observer attached, detail `tokens`, and reads back the trace file. */
async function traceRun(dir: string): Promise<Run> {
  const traceFile = join(dir, 'trace.jsonl');
  const telemetry: Telemetry = await startTelemetry({
    serviceName: 'engine-test',
    detail: 'tokens',
    traceFile,
    prometheus: 'handler',
  });
  const et = new EngineTelemetry(telemetry, { config, expertDtype: 'fp32' });
  const routed = new Map<string, number[][]>();
  const tap = (layer: number, chunks: readonly ScheduledChunk[], routes: TokenRoutes) => {
    let row = 0;
    for (const c of chunks) {
      for (let t = 0; t < c.count; t++, row++) {
        const key = `${c.seq.id}@${c.start + t}`;
        const layers = routed.get(key) ?? [];
        layers[layer] = [...routes.expertIds.subarray(routes.offsets[row], routes.offsets[row + 1])].sort(
          (a, b) => a - b,
        );
        routed.set(key, layers);
      }
    }
  };
  const bundle: EngineBundle = await createEngine(model, {
    expertDtype: 'fp32',
    denseDtype: 'fp32',
    blockSize: 4,
    microBatches: 2,
    scheduler: { maxBatchedTokens: 16, maxRunningSequences: 8 },
    onRouted: (layer, chunks, routes) => {
      tap(layer, chunks, routes);
      et.onRouted(layer, chunks, routes);
    },
  });
  const finals = new Map<string, TokenEvent>();
  const { engine, tokenizer } = bundle;
  const generate = async (ids: number[]) => {
    for (const i of ids) {
      const requestId = `req-${i}`;
      const handle = et.startRequest({ operation: 'text_completion', model: config.name, requestId, maxTokens: 6 });
      // As a NATS engine does before admission: say where the prompt's KV came from (here, 4 tokens "fetched").
      if (i === 2) handle.recordKvTransfer(KV_TRANSFER);
      const params = resolveSamplingParams({ maxTokens: 6, temperature: 0, stopAtEos: false });
      engine.add(
        { id: requestId, promptIds: tokenizer.encode(prompts[i] ?? ''), params },
        handle.wrapSink((e) => e.finishReason && finals.set(requestId, e)),
      );
    }
    while (engine.hasWork) await et.traceStep(() => engine.step());
  };
  try {
    await generate([0, 1]); // together: chunked prefill, two micro-batches
    await generate([2]); // the first prompt again: a prefix-cache hit
    const prometheus = await telemetry.renderPrometheus();
    await telemetry.shutdown();
    return { spans: await readTraceFile(traceFile), finals, routed, prometheus };
  } finally {
    await telemetry.shutdown();
    await bundle.close();
  }
}

describe('engine telemetry on tiny with a shared expert', () => {
  let dir = '';
  let run: Run;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'switchyard-telemetry-'));
    run = await traceRun(dir);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const requestSpans = () => run.spans.filter(isRequestSpan);

  it('names each request span after its operation and model, with the GenAI attributes and usage', () => {
    const spans = requestSpans();
    expect(spans.map((s) => s.attributes[N.ATTR_REQUEST_ID]).sort()).toEqual(['req-0', 'req-1', 'req-2']);
    for (const span of spans) {
      const final = run.finals.get(String(span.attributes[N.ATTR_REQUEST_ID]));
      expect(span.name).toBe('text_completion tiny');
      expect(span.kind).toBe('server');
      expect(span.attributes).toMatchObject({
        [N.ATTR_GEN_AI_OPERATION_NAME]: 'text_completion',
        [N.ATTR_GEN_AI_PROVIDER_NAME]: 'switchyard',
        [N.ATTR_GEN_AI_REQUEST_MODEL]: 'tiny',
        [N.ATTR_GEN_AI_USAGE_INPUT_TOKENS]: final?.usage?.promptTokens,
        [N.ATTR_GEN_AI_USAGE_OUTPUT_TOKENS]: final?.usage?.completionTokens,
        [N.ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS]: final?.usage?.cachedPromptTokens,
        [N.ATTR_GEN_AI_RESPONSE_FINISH_REASONS]: ['length'],
      });
    }
    expect(run.finals.get('req-2')?.usage?.cachedPromptTokens).toBeGreaterThan(0);
  });

  it("gives every computed token an event whose experts, active parameters and FLOPs match the router's decisions and the analytic count", () => {
    let checked = 0;
    for (const span of requestSpans()) {
      const id = String(span.attributes[N.ATTR_REQUEST_ID]);
      const usage = run.finals.get(id)?.usage;
      const events = span.events.filter((e) => e.name === N.EVENT_TOKEN);
      // Every prompt token not found in the cache, and every generated token but the last (never fed back).
      expect(events).toHaveLength(
        (usage?.promptTokens ?? 0) - (usage?.cachedPromptTokens ?? 0) + (usage?.completionTokens ?? 0) - 1,
      );
      for (const event of events) {
        const position = numberAttribute(event.attributes, N.ATTR_TOKEN_POSITION, -1);
        const sampled = event.attributes[N.ATTR_TOKEN_SAMPLED] === true;
        const experts = (event.attributes[N.ATTR_TOKEN_EXPERTS] as string[]).map((s) =>
          s
            .split(',')
            .map(Number)
            .sort((a, b) => a - b),
        );
        expect(experts).toEqual(run.routed.get(`${id}@${position}`));
        const distinct = experts.reduce((n, ids) => n + new Set(ids).size, 0);
        expect(distinct).toBe(config.numLayers * config.numExpertsPerToken);
        expect({
          activeParams: event.attributes[N.ATTR_TOKEN_ACTIVE_PARAMS],
          flops: event.attributes[N.ATTR_TOKEN_FLOPS],
        }).toEqual(analytic(position, distinct, sampled));
        expect(event.attributes[N.ATTR_TOKEN_PHASE]).toBe(position < (usage?.promptTokens ?? 0) ? 'prefill' : 'decode');
        checked++;
      }
      // Exactly the rows that produce an output token ran the LM head.
      expect(events.filter((e) => e.attributes[N.ATTR_TOKEN_SAMPLED] === true)).toHaveLength(
        usage?.completionTokens ?? -1,
      );
      const sum = (name: string) => events.reduce((n, e) => n + numberAttribute(e.attributes, name), 0);
      expect(numberAttribute(span.attributes, N.ATTR_REQUEST_FLOPS)).toBe(sum(N.ATTR_TOKEN_FLOPS));
      expect(numberAttribute(span.attributes, N.ATTR_REQUEST_ACTIVE_PARAMS)).toBe(sum(N.ATTR_TOKEN_ACTIVE_PARAMS));
    }
    expect(checked).toBeGreaterThan(40);
  });

  it('records what the prefix cache saved as the analytic prefill FLOPs of the cached positions', () => {
    const span = requestSpans().find((s) => s.attributes[N.ATTR_REQUEST_ID] === 'req-2');
    const cached = run.finals.get('req-2')?.usage?.cachedPromptTokens ?? 0;
    let expected = 0;
    for (let p = 0; p < cached; p++) expected += analytic(p, 4, false).flops;
    expect(span && numberAttribute(span.attributes, N.ATTR_PREFIX_CACHE_FLOPS_SAVED)).toBe(expected);
  });

  it('records where a prompt’s KV came from on its span and in the metrics, and splits the FLOPs saved', () => {
    const span = requestSpans().find((s) => s.attributes[N.ATTR_REQUEST_ID] === 'req-2');
    if (!span) throw new Error('no span for req-2');
    expect(span.attributes[N.ATTR_KV_FETCH_OUTCOME]).toBe('fetched');
    expect(span.attributes[N.ATTR_KV_FETCH_SOURCE]).toBe('engine');
    expect(numberAttribute(span.attributes, N.ATTR_KV_FETCHED_TOKENS)).toBe(4);
    expect(numberAttribute(span.attributes, N.ATTR_KV_FETCH_BYTES)).toBe(1234);
    let remote = 0;
    for (let p = 0; p < 4; p++) remote += analytic(p, 4, false).flops;
    expect(numberAttribute(span.attributes, N.ATTR_KV_REMOTE_FLOPS_SAVED)).toBe(remote);
    const report = buildTokenReport(run.spans, { deviceHourUsd: 1 });
    expect(report.savings.prefixCache.remoteFlopsSaved).toBe(remote);
    expect(report.savings.prefixCache.remoteTokens).toBe(4);
    expect(report.savings.prefixCache.localFlopsSaved).toBe(report.savings.prefixCache.flopsSaved - remote);
    expect(run.prometheus).toMatch(/switchyard_kv_prompt_tokens_total\{[^}]*switchyard_kv_source="engine"[^}]*\} 4\b/);
    expect(run.prometheus).toMatch(
      /switchyard_kv_fetches_total\{[^}]*switchyard_kv_fetch_outcome="fetched"[^}]*\} 1\b/,
    );
  });

  it('makes one step span per step whose token and FLOP totals add up to the requests', () => {
    const steps = run.spans.filter(isStepSpan);
    const total = (spans: SpanRecord[], name: string) =>
      spans.reduce((n, s) => n + numberAttribute(s.attributes, name), 0);
    expect(steps.length).toBeGreaterThan(5);
    expect(total(steps, N.ATTR_STEP_TOKENS)).toBe(total(requestSpans(), N.ATTR_REQUEST_COMPUTED_TOKENS));
    expect(total(steps, N.ATTR_STEP_FLOPS)).toBe(total(requestSpans(), N.ATTR_REQUEST_FLOPS));
    expect(
      steps.every(
        (s) =>
          s.attributes[N.ATTR_EXPERT_DTYPE] === 'fp32' && numberAttribute(s.attributes, N.ATTR_STEP_EXPERT_BYTES) > 0,
      ),
    ).toBe(true);
  });

  it('exposes the named metrics in Prometheus text, with token counts equal to the usage', () => {
    const text = run.prometheus;
    for (const name of [
      'gen_ai_server_time_to_first_token_seconds',
      'gen_ai_server_time_per_output_token_seconds',
      'gen_ai_server_request_duration_seconds',
      'gen_ai_client_token_usage',
      'switchyard_token_active_params',
      'switchyard_token_flops',
      'switchyard_expert_tokens_total',
      'switchyard_expert_balancedness_ratio',
      'vllm:prefix_cache_queries_total',
      'vllm:prefix_cache_hits_total',
    ]) {
      expect(text).toContain(`# TYPE ${name}`);
    }
    const usage = [...run.finals.values()].map((e) => e.usage);
    const sumOf = (type: string) =>
      Number(
        new RegExp(`gen_ai_client_token_usage_sum\\{[^}]*gen_ai_token_type="${type}"[^}]*\\} (\\S+)`).exec(text)?.[1],
      );
    expect(sumOf('input')).toBe(usage.reduce((n, u) => n + (u?.promptTokens ?? 0), 0));
    expect(sumOf('output')).toBe(usage.reduce((n, u) => n + (u?.completionTokens ?? 0), 0));
    const hits = Number(/vllm:prefix_cache_hits_total\{[^}]*\} (\S+)/.exec(text)?.[1]);
    expect(hits).toBe(usage.reduce((n, u) => n + (u?.cachedPromptTokens ?? 0), 0));
  });
});
