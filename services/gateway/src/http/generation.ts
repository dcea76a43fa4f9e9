import { randomUUID } from 'node:crypto';
import type { FastifyReply } from 'fastify';
import type { GenerationBackend } from '@switchyard/engine';
import { choiceSeed } from './choice-seed.ts';
import { ChoiceSet } from './choice-set.ts';
import {
  choiceBody,
  chunkChoices,
  usageOf,
  type ApiKind,
  type Choice,
  type PromptJob,
  type RenderContext,
  type Usage,
} from './choice-render.ts';
import { badRequest, HttpError, tooManyRequests, unavailable } from './openai-error.ts';
import type { ChoiceOptions } from './request-params.ts';

export type { ApiKind, PromptJob } from './choice-render.ts';

export interface GenerationJob {
  readonly kind: ApiKind;
  /** One or more prompts (a completions batch); each gets `options.n` choices. */
  readonly prompts: readonly PromptJob[];
  readonly options: ChoiceOptions;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly cacheSalt: string;
  /** The client's `traceparent` header, if any. */
  readonly traceparent?: string;
}

/**
 * Runs one OpenAI request against the backend and writes the answer: a JSON body, or an SSE stream
 * ending in `data: [DONE]`. Each choice is a request of its own to the backend (so `n` and a batch of
 * prompts work the same in process and over the queue, and the prefix cache shares the prompt),
 * numbered as OpenAI does: prompt-major, choice i of prompt p at p × n + i. Stream chunks interleave
 * choices as their tokens come. A client that goes away cancels every choice, which frees their KV
 * blocks; a choice that fails cancels the others and fails the request.
 */
export async function serveGeneration(
  backend: GenerationBackend,
  job: GenerationJob,
  reply: FastifyReply,
): Promise<void> {
  if (!backend.isReady()) throw unavailable('the model is not ready yet');
  if (!backend.canAdmit()) throw tooManyRequests('the request queue is full; retry later');
  const id = `${job.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replaceAll('-', '')}`;
  const head = { id, created: Math.floor(Date.now() / 1000), model: backend.modelId };
  const ctx: RenderContext = { kind: job.kind, options: job.options, tokenizer: backend.tokenizer };
  const object = job.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  const set = new ChoiceSet(backend, planChoices(id, job), (choice, event) => {
    if (!job.stream) return;
    const parts = chunkChoices(ctx, choice, event, choice.events.length === 1);
    for (const part of parts) sse(reply, { ...head, object, choices: [part] });
  });
  reply.raw.on('close', () => set.abortOpen());
  set.submitAll(
    {
      operation: job.kind === 'chat' ? 'chat' : 'text_completion',
      stream: job.stream,
      ...(job.traceparent ? { traceparent: job.traceparent } : {}),
    },
    job.cacheSalt,
  );
  if (job.stream) startStream(reply);
  await set.done;
  const usage = usageOf(ctx, set.choices);
  if (job.stream) return endStream(reply, job, { ...head, object }, set.failure, usage);
  if (set.failure) throw generationError(set.failure);
  await reply.send({
    ...head,
    object: job.kind === 'chat' ? 'chat.completion' : 'text_completion',
    choices: set.choices.map((c) => choiceBody(ctx, c)),
    usage,
  });
}

/** Every (prompt, choice) pair as a backend request: its own id and, past the first choice, its own seed. */
function planChoices(id: string, job: GenerationJob): Choice[] {
  const { n } = job.options;
  const single = job.prompts.length * n === 1;
  return job.prompts.flatMap((prompt, p) =>
    Array.from({ length: n }, (_, i) => {
      const index = p * n + i;
      return {
        index,
        requestId: single ? id : `${id}-${index}`,
        prompt,
        params: i === 0 ? prompt.params : { ...prompt.params, seed: choiceSeed(prompt.params.seed, i) },
        events: [],
        final: undefined,
        logprobOffset: 0,
      };
    }),
  );
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
  if (!reply.raw.headersSent) startStream(reply);
  if (!reply.raw.writableEnded) reply.raw.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
}

function endStream(
  reply: FastifyReply,
  job: GenerationJob,
  head: object,
  failure: Error | undefined,
  usage: Usage,
): void {
  if (failure) {
    sse(reply, generationError(failure).body);
  } else if (job.includeUsage) {
    sse(reply, { ...head, choices: [], usage });
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
