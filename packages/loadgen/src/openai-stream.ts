/**
 * One streaming `/v1/completions` request, timed the way vLLM's `async_request_openai_completions`
 * times it: TTFT at the first chunk that has `choices`, an ITL gap at every later one, the E2E latency at
 * the last one; the usage chunk (sent with `stream_options.include_usage`) gives the token counts.
 * `ignore_eos` and `max_tokens` = the wanted output length make output lengths exact.
 */

import type { BenchRequest, RequestOutput } from './request-output.ts';
import { SseReader } from './sse-reader.ts';

export interface CompletionTarget {
  readonly baseUrl: string;
  readonly model: string;
  readonly temperature: number;
  /** Fails (not cancels) a request still running after this long. */
  readonly requestTimeoutMs: number;
}

interface StreamState {
  firstAt: number | undefined;
  lastAt: number;
  readonly itlMs: number[];
  text: string;
  numChunks: number;
  usage: { prompt: number | undefined; completion: number | undefined };
  error: string;
}

function onPayload(payload: string, state: StreamState): void {
  if (payload === '[DONE]') return;
  const now = performance.now();
  const data = JSON.parse(payload) as {
    choices?: { text?: string }[];
    usage?: { prompt_tokens?: number; completion_tokens?: number };
    error?: { message?: string };
  };
  if (data.error) {
    state.error = data.error.message ?? 'error event in the stream';
    return;
  }
  const choice = data.choices?.[0];
  if (choice !== undefined) {
    if (state.firstAt === undefined) state.firstAt = now;
    else state.itlMs.push(now - state.lastAt);
    state.lastAt = now;
    state.text += choice.text ?? '';
    state.numChunks++;
  } else if (data.usage) {
    state.usage = { prompt: data.usage.prompt_tokens, completion: data.usage.completion_tokens };
  }
}

async function errorOf(response: Response): Promise<string> {
  const body = await response.text().catch(() => '');
  try {
    const message = (JSON.parse(body) as { error?: { message?: string } }).error?.message;
    if (message) return `HTTP ${response.status}: ${message}`;
  } catch {
    // not JSON: fall through to the raw body
  }
  return `HTTP ${response.status}: ${body.slice(0, 200)}`;
}

/**
 * Sends `request` and reads its stream to the end. Never throws: a failure is an output with
 * `success: false` and the error; an abort through `signal` is `cancelled`.
 */
export async function streamCompletion(
  target: CompletionTarget,
  request: BenchRequest,
  timing: { readonly runStartMs: number; readonly queueMs: number },
  signal: AbortSignal,
): Promise<RequestOutput> {
  const sentAt = performance.now();
  const state: StreamState = {
    firstAt: undefined,
    lastAt: sentAt,
    itlMs: [],
    text: '',
    numChunks: 0,
    usage: { prompt: undefined, completion: undefined },
    error: '',
  };
  const timeout = AbortSignal.timeout(target.requestTimeoutMs);
  try {
    const response = await fetch(`${target.baseUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: target.model,
        prompt: request.promptIds,
        max_tokens: request.outputLen,
        temperature: target.temperature,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      }),
      signal: AbortSignal.any([signal, timeout]),
    });
    if (response.status !== 200 || response.body === null) {
      state.error = await errorOf(response);
    } else {
      const reader = new SseReader();
      for await (const bytes of response.body) for (const payload of reader.push(bytes)) onPayload(payload, state);
      for (const payload of reader.finish()) onPayload(payload, state);
      if (state.firstAt === undefined && state.error === '') state.error = 'the stream ended without a token chunk';
    }
  } catch (error) {
    if (signal.aborted) return outputOf(request, sentAt, timing, state, { cancelled: true });
    state.error = timeout.aborted
      ? `timed out after ${target.requestTimeoutMs} ms`
      : error instanceof Error
        ? `${error.message}${error.cause instanceof Error ? ` (${error.cause.message})` : ''}`
        : String(error);
  }
  return outputOf(request, sentAt, timing, state, { cancelled: false });
}

function outputOf(
  request: BenchRequest,
  sentAt: number,
  timing: { readonly runStartMs: number; readonly queueMs: number },
  state: StreamState,
  { cancelled }: { cancelled: boolean },
): RequestOutput {
  const success = !cancelled && state.firstAt !== undefined && state.error === '';
  return {
    success,
    cancelled,
    promptLen: state.usage.prompt ?? request.promptIds.length,
    outputTokens: state.usage.completion ?? state.numChunks,
    startMs: sentAt - timing.runStartMs,
    ttftMs: state.firstAt === undefined ? 0 : state.firstAt - sentAt,
    itlMs: state.itlMs,
    latencyMs: state.lastAt - sentAt,
    queueMs: timing.queueMs,
    generatedText: state.text,
    error: cancelled ? 'cancelled' : state.error,
  };
}
