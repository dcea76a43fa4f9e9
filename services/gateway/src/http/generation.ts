import { randomUUID } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import { RequestRejectedError, type SamplingParams, type TokenEvent } from '@switchyard/engine';
import type { GenerationBackend } from '@switchyard/engine';
import { badRequest, HttpError, tooManyRequests, unavailable } from './openai-error.ts';

export type ApiKind = 'completion' | 'chat';

export interface GenerationJob {
  readonly kind: ApiKind;
  readonly promptIds: readonly number[];
  readonly params: SamplingParams;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly cacheSalt: string;
  /** The client's `traceparent` header, if any. */
  readonly traceparent?: string;
}

interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens: number };
}

/**
 * Runs one OpenAI request against the backend and writes the answer: a JSON body, or an SSE stream
 * ending in `data: [DONE]`. A client that goes away cancels its request, which frees its KV blocks.
 */
export async function serveGeneration(
  backend: GenerationBackend,
  job: GenerationJob,
  reply: FastifyReply,
): Promise<void> {
  if (!backend.isReady()) throw unavailable('the model is not ready yet');
  if (!backend.canAdmit()) throw tooManyRequests('the request queue is full; retry later');
  const id = `${job.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`;
  const created = Math.floor(Date.now() / 1000);
  const head = { id, created, model: backend.modelId };
  const events: TokenEvent[] = [];
  let finished = false;
  let onEvent: (event: TokenEvent) => void = () => {};
  const done = new Promise<TokenEvent>((resolve) => {
    onEvent = (event) => {
      events.push(event);
      if (job.stream) writeChunk(reply, job, head, event, events.length === 1);
      if (event.finishReason) {
        finished = true;
        resolve(event);
      }
    };
  });
  reply.raw.on('close', () => {
    if (!finished) backend.abort(id);
  });
  try {
    const meta = {
      operation: job.kind === 'chat' ? 'chat' : 'text_completion',
      stream: job.stream,
      ...(job.traceparent ? { traceparent: job.traceparent } : {}),
    } as const;
    backend.submit(
      { id, promptIds: job.promptIds, params: job.params, cacheSalt: job.cacheSalt },
      (e) => onEvent(e),
      meta,
    );
  } catch (error) {
    if (error instanceof RequestRejectedError) throw badRequest(error.message, 'prompt', error.code);
    throw error;
  }
  if (job.stream) startStream(reply);
  const last = await done;
  const usage = usageOf(last);
  if (job.stream) return endStream(reply, job, head, last, usage);
  if (last.error) throw generationError(last.error);
  const text = events.map((e) => e.text).join('');
  await reply.send(job.kind === 'chat' ? chatBody(head, text, last, usage) : completionBody(head, text, last, usage));
}

function usageOf(last: TokenEvent): Usage {
  const u = last.usage;
  const prompt = u?.promptTokens ?? 0;
  const completion = u?.completionTokens ?? 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: u?.cachedPromptTokens ?? 0 },
  };
}

const finishReasonOf = (e: TokenEvent): string | null =>
  e.finishReason === undefined ? null : e.finishReason === 'error' ? 'error' : e.finishReason;

function completionBody(head: object, text: string, last: TokenEvent, usage: Usage): object {
  return {
    ...head,
    object: 'text_completion',
    choices: [{ index: 0, text, logprobs: null, finish_reason: finishReasonOf(last) }],
    usage,
  };
}

function chatBody(head: object, text: string, last: TokenEvent, usage: Usage): object {
  return {
    ...head,
    object: 'chat.completion',
    choices: [
      { index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: finishReasonOf(last) },
    ],
    usage,
  };
}

function startStream(reply: FastifyReply): void {
  reply.hijack();
  if (!reply.raw.headersSent) {
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
  }
}

function sse(reply: FastifyReply, data: unknown): void {
  if (!reply.raw.writableEnded) reply.raw.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
}

function writeChunk(reply: FastifyReply, job: GenerationJob, head: object, event: TokenEvent, first: boolean): void {
  if (!reply.raw.headersSent) startStream(reply);
  if (event.error) return;
  const finish = finishReasonOf(event);
  if (job.kind === 'chat') {
    if (first)
      sse(reply, {
        ...head,
        object: 'chat.completion.chunk',
        choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
      });
    if (event.text || finish) {
      sse(reply, {
        ...head,
        object: 'chat.completion.chunk',
        choices: [
          { index: 0, delta: event.text ? { content: event.text } : {}, logprobs: null, finish_reason: finish },
        ],
      });
    }
    return;
  }
  sse(reply, {
    ...head,
    object: 'text_completion',
    choices: [{ index: 0, text: event.text, logprobs: null, finish_reason: finish }],
  });
}

function endStream(reply: FastifyReply, job: GenerationJob, head: object, last: TokenEvent, usage: Usage): void {
  if (last.error) {
    sse(reply, generationError(last.error).body);
  } else if (job.includeUsage) {
    sse(reply, {
      ...head,
      object: job.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
      choices: [],
      usage,
    });
  }
  sse(reply, '[DONE]');
  reply.raw.end();
}

/** Failures a retry can cure (a worker down, no live replica yet): 503 with `Retry-After`. */
const RETRYABLE_CODES = new Set(['no_replica', 'UNAVAILABLE']);

/** Engine reject codes a queued request can come back with: the client's fault, so 400. */
const REJECT_CODES = new Set(['prompt_too_long', 'empty_prompt', 'exceeds_kv_capacity', 'invalid_token_id']);

/**
 * The HTTP error for a generation that ended in an error: 400 for a request an engine refused (in NATS
 * mode the refusal comes back as a remote error with the engine's code), 503 with `Retry-After` for one
 * a retry can cure (no live worker for its experts), 500 otherwise. The message
 * never carries an address (a broker or worker URL, host:port): they are replaced by `<address>`.
 */
export function generationError(error: Error): HttpError {
  const remoteCode = 'remoteCode' in error && typeof error.remoteCode === 'string' ? error.remoteCode : undefined;
  const ownCode = 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  const message = withoutAddresses(error.message);
  if (remoteCode !== undefined && REJECT_CODES.has(remoteCode)) return badRequest(message, 'prompt', remoteCode);
  const code = remoteCode ?? ownCode;
  if (code !== undefined && RETRYABLE_CODES.has(code)) {
    // The experts (or a worker) are away for now: a retry in a moment may well succeed.
    return new HttpError(503, 'service_unavailable', `generation failed: ${message}`, null, code, 1);
  }
  return new HttpError(500, 'server_error', `generation failed: ${message}`, null, 'generation_failed');
}

/** Replaces URLs, and host:port pairs, in a message shown to clients. */
export function withoutAddresses(message: string): string {
  return message
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s'",)]+/gi, '<address>')
    .replace(/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b/g, '<address>')
    .replace(/\b(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+):\d{1,5}\b/gi, '<address>');
}
