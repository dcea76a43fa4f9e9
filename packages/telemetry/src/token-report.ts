/**
 * The token-economics report of a traced run: spans in (request and step spans of a trace file), a
 * plain `TokenReport` out. Pure.
 *
 * Cost basis: devices are billed for the time the engine was stepping (Σ step-span durations × devices
 * × price per device-second); idle time between requests is not billed. Each step's cost is split
 * between input and output tokens in proportion to its prefill and decode FLOPs, so a decode-only step —
 * memory-bound, few FLOPs for its time — is charged wholly to output tokens, which is why output tokens
 * cost more. Without step spans, the run's wall time is billed and split by the requests' FLOPs.
 *
 * Savings are what each feature saved against the same run without it (see cost-model.ts): MoE
 * sparsity at the measured FLOP rate, int8 experts by the weight bytes decode reads (memory-bound),
 * prefix-cache hits at the measured cost per prefill FLOP. For int8 on a run with fp32 experts the
 * figure is what int8 would have saved (`applied: false`).
 */
import {
  ATTR_EXPERT_DTYPE,
  ATTR_GEN_AI_OPERATION_NAME,
  ATTR_GEN_AI_REQUEST_MODEL,
  ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_INPUT_TOKENS,
  ATTR_GEN_AI_USAGE_OUTPUT_TOKENS,
  ATTR_PREFIX_CACHE_FLOPS_SAVED,
  ATTR_KV_FETCHED_TOKENS,
  ATTR_KV_REMOTE_FLOPS_SAVED,
  ATTR_REQUEST_ACTIVE_PARAMS,
  ATTR_REQUEST_COMPUTED_TOKENS,
  ATTR_REQUEST_DECODE_FLOPS,
  ATTR_REQUEST_DECODE_TOKENS,
  ATTR_REQUEST_DENSE_EQUIVALENT_FLOPS,
  ATTR_REQUEST_FLOPS,
  ATTR_REQUEST_PREFILL_FLOPS,
  ATTR_REQUEST_PREFILL_TOKENS,
  ATTR_STEP_DECODE_FLOPS,
  ATTR_STEP_DENSE_BYTES,
  ATTR_STEP_EXPERT_BYTES_FP32,
  ATTR_STEP_EXPERT_BYTES_INT8,
  ATTR_STEP_PREFILL_FLOPS,
  SPAN_ENGINE_STEP,
} from './names.ts';
import { numberAttribute, stringAttribute, type SpanRecord } from './span-record.ts';

export interface ReportOptions {
  readonly deviceHourUsd: number;
  /** Devices the run occupied (gateway and workers together); default 1. */
  readonly numDevices?: number;
}

export interface TokenReport {
  readonly models: readonly string[];
  readonly numRequests: number;
  readonly numFailedRequests: number;
  readonly numSteps: number;
  readonly tokens: {
    readonly input: number;
    readonly output: number;
    readonly cachedInput: number;
    /** Rows computed: prompt rows not cached, generated rows, recomputation. */
    readonly computed: number;
    readonly computedPrefill: number;
    readonly computedDecode: number;
  };
  readonly time: { readonly wallSeconds: number; readonly busySeconds: number };
  readonly throughput: {
    readonly tokensPerSecond: number;
    readonly inputTokensPerSecond: number;
    readonly outputTokensPerSecond: number;
  };
  /** Per computed token. */
  readonly perToken: { readonly activeParams: number; readonly flops: number; readonly denseEquivalentFlops: number };
  readonly flops: {
    readonly total: number;
    readonly prefill: number;
    readonly decode: number;
    readonly denseEquivalent: number;
  };
  readonly cost: {
    readonly deviceHourUsd: number;
    readonly numDevices: number;
    readonly basis: 'step-time' | 'wall-time';
    readonly totalUsd: number;
    readonly inputUsd: number;
    readonly outputUsd: number;
    /** 0 when the run had no such tokens. */
    readonly perMillionInputUsd: number;
    readonly perMillionOutputUsd: number;
  };
  readonly savings: {
    readonly moeSparsity: { readonly flopsSaved: number; readonly fraction: number; readonly usd: number };
    readonly int8Experts: {
      readonly expertDtype: string;
      readonly applied: boolean;
      readonly weightBytesReadFp32: number;
      readonly weightBytesReadInt8: number;
      readonly memoryBoundSpeedup: number;
      readonly usd: number;
    };
    readonly prefixCache: {
      readonly cachedTokens: number;
      readonly flopsSaved: number;
      readonly usd: number;
      /** Of the cached tokens, those whose pages were fetched from a peer engine or the page store. */
      readonly remoteTokens: number;
      /** Of the FLOPs saved, those saved by local hits and by remote (fetched) ones. */
      readonly localFlopsSaved: number;
      readonly remoteFlopsSaved: number;
    };
  };
}

/** Request spans carry `gen_ai.operation.name`; step spans are named `switchyard.engine.step`. */
export function isRequestSpan(span: SpanRecord): boolean {
  return typeof span.attributes[ATTR_GEN_AI_OPERATION_NAME] === 'string';
}

export function isStepSpan(span: SpanRecord): boolean {
  return span.name === SPAN_ENGINE_STEP;
}

export function buildTokenReport(spans: readonly SpanRecord[], options: ReportOptions): TokenReport {
  const numDevices = options.numDevices ?? 1;
  const requests = spans.filter(isRequestSpan);
  const steps = spans.filter(isStepSpan);
  const sum = (list: readonly SpanRecord[], name: string) =>
    list.reduce((acc, s) => acc + numberAttribute(s.attributes, name), 0);

  const input = sum(requests, ATTR_GEN_AI_USAGE_INPUT_TOKENS);
  const output = sum(requests, ATTR_GEN_AI_USAGE_OUTPUT_TOKENS);
  const computed = sum(requests, ATTR_REQUEST_COMPUTED_TOKENS);
  const flops = sum(requests, ATTR_REQUEST_FLOPS);
  const prefill = sum(requests, ATTR_REQUEST_PREFILL_FLOPS);
  const decode = sum(requests, ATTR_REQUEST_DECODE_FLOPS);
  const dense = sum(requests, ATTR_REQUEST_DENSE_EQUIVALENT_FLOPS);
  const timed = requests.length > 0 ? requests : spans;
  const wallSeconds =
    timed.length > 0
      ? (Math.max(...timed.map((s) => s.endTimeUnixMs)) - Math.min(...timed.map((s) => s.startTimeUnixMs))) / 1000
      : 0;
  const busySeconds = steps.length > 0 ? steps.reduce((acc, s) => acc + s.durationMs, 0) / 1000 : wallSeconds;
  const usdPerSecond = (options.deviceHourUsd * numDevices) / 3600;
  const totalUsd = busySeconds * usdPerSecond;
  const { inputUsd, outputUsd } =
    steps.length > 0 ? splitByStep(steps, usdPerSecond) : splitByFlops(totalUsd, prefill, decode);
  const expertDtype =
    steps.map((s) => stringAttribute(s.attributes, ATTR_EXPERT_DTYPE)).find((d) => d !== undefined) ?? 'unknown';
  const bytesFp32 = sum(steps, ATTR_STEP_DENSE_BYTES) + sum(steps, ATTR_STEP_EXPERT_BYTES_FP32);
  const bytesInt8 = sum(steps, ATTR_STEP_DENSE_BYTES) + sum(steps, ATTR_STEP_EXPERT_BYTES_INT8);
  const speedup = bytesInt8 > 0 ? bytesFp32 / bytesInt8 : 1;
  const applied = expertDtype === 'int8';
  const prefixFlops = sum(requests, ATTR_PREFIX_CACHE_FLOPS_SAVED);
  const remoteFlops = Math.min(prefixFlops, sum(requests, ATTR_KV_REMOTE_FLOPS_SAVED));

  return {
    models: [...new Set(requests.map((s) => stringAttribute(s.attributes, ATTR_GEN_AI_REQUEST_MODEL) ?? ''))]
      .filter(Boolean)
      .sort(),
    numRequests: requests.length,
    numFailedRequests: requests.filter((s) => s.status.code === 'error').length,
    numSteps: steps.length,
    tokens: {
      input,
      output,
      cachedInput: sum(requests, ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
      computed,
      computedPrefill: sum(requests, ATTR_REQUEST_PREFILL_TOKENS),
      computedDecode: sum(requests, ATTR_REQUEST_DECODE_TOKENS),
    },
    time: { wallSeconds, busySeconds },
    throughput: {
      tokensPerSecond: ratio(input + output, wallSeconds),
      inputTokensPerSecond: ratio(input, wallSeconds),
      outputTokensPerSecond: ratio(output, wallSeconds),
    },
    perToken: {
      activeParams: ratio(sum(requests, ATTR_REQUEST_ACTIVE_PARAMS), computed),
      flops: ratio(flops, computed),
      denseEquivalentFlops: ratio(dense, computed),
    },
    flops: { total: flops, prefill, decode, denseEquivalent: dense },
    cost: {
      deviceHourUsd: options.deviceHourUsd,
      numDevices,
      basis: steps.length > 0 ? 'step-time' : 'wall-time',
      totalUsd,
      inputUsd,
      outputUsd,
      perMillionInputUsd: ratio(inputUsd * 1e6, input),
      perMillionOutputUsd: ratio(outputUsd * 1e6, output),
    },
    savings: {
      moeSparsity: {
        flopsSaved: dense - flops,
        fraction: dense > 0 ? 1 - flops / dense : 0,
        usd: flops > 0 ? totalUsd * (dense / flops - 1) : 0,
      },
      int8Experts: {
        expertDtype,
        applied,
        weightBytesReadFp32: bytesFp32,
        weightBytesReadInt8: bytesInt8,
        memoryBoundSpeedup: speedup,
        usd: applied ? outputUsd * (speedup - 1) : outputUsd * (1 - 1 / speedup),
      },
      prefixCache: {
        cachedTokens: sum(requests, ATTR_GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
        flopsSaved: prefixFlops,
        usd: prefill > 0 ? (inputUsd * prefixFlops) / prefill : 0,
        remoteTokens: sum(requests, ATTR_KV_FETCHED_TOKENS),
        localFlopsSaved: prefixFlops - remoteFlops,
        remoteFlopsSaved: remoteFlops,
      },
    },
  };
}

/** Each step's cost split by its prefill and decode FLOPs; a step with no FLOPs goes to output. */
function splitByStep(steps: readonly SpanRecord[], usdPerSecond: number): { inputUsd: number; outputUsd: number } {
  let inputUsd = 0;
  let outputUsd = 0;
  for (const step of steps) {
    const usd = (step.durationMs / 1000) * usdPerSecond;
    const p = numberAttribute(step.attributes, ATTR_STEP_PREFILL_FLOPS);
    const d = numberAttribute(step.attributes, ATTR_STEP_DECODE_FLOPS);
    const share = p + d > 0 ? p / (p + d) : 0;
    inputUsd += usd * share;
    outputUsd += usd * (1 - share);
  }
  return { inputUsd, outputUsd };
}

function splitByFlops(totalUsd: number, prefill: number, decode: number): { inputUsd: number; outputUsd: number } {
  const share = prefill + decode > 0 ? prefill / (prefill + decode) : 0;
  return { inputUsd: totalUsd * share, outputUsd: totalUsd * (1 - share) };
}

function ratio(a: number, b: number): number {
  return b > 0 ? a / b : 0;
}
