import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { registerAuth, type AuthOptions } from './auth.ts';
import { checkParameters } from './parameters.ts';
import { TooManyTokensError } from '../tokenize/off-thread-tokenizer.ts';
import type { GenerationBackend } from '@switchyard/engine';
import { serveGeneration, type GenerationJob, type PromptJob } from './generation.ts';
import { HttpError, badRequest, notFound } from './openai-error.ts';
import {
  checkModel,
  checkPromptIds,
  checkPromptLength,
  choiceOptionsOf,
  contextLengthExceeded,
  renderChat,
  samplingParamsOf,
  type ChoiceOptions,
} from './request-params.ts';
import { chatSchema, completionSchema, type ChatBody, type CompletionBody } from './schemas.ts';

export interface HttpServerOptions {
  readonly backend: GenerationBackend;
  /** Largest request body accepted (413 above it). */
  readonly bodyLimitBytes: number;
  /** Extra routes (metrics) registered by the composition root. */
  readonly extraRoutes?: (app: FastifyInstance) => void;
  /** API keys (and per-key rate limits); absent: the API is open. */
  readonly auth?: AuthOptions;
  /**
   * Encodes a prompt text, long ones off the event loop (`OffThreadTokenizer`); absent: the backend's
   * tokenizer, in place.
   */
  readonly tokenize?: (text: string, maxTokens: number) => Promise<number[]>;
}

/**
 * The OpenAI-compatible HTTP API: /v1/completions, /v1/chat/completions, /v1/models, /health and
 * /ready. Every error answers with OpenAI's error body; nothing a client sends can stop the server.
 */
export function createHttpServer(options: HttpServerOptions): FastifyInstance {
  const app = Fastify({
    bodyLimit: options.bodyLimitBytes,
    logger: false,
    // NOTE: Fastify's ajv coerces types by default (`[65]` would pass as the string "65"); here a value
    // is what it is.
    ajv: { customOptions: { allErrors: false, coerceTypes: false } },
  });

  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    const http = toHttpError(error);
    if (reply.raw.headersSent) {
      reply.raw.end();
      return;
    }
    if (http.status === 413) {
      // The body was refused unread: read (and drop) what the client is still sending, up to a cap,
      // so it gets to read the 413 instead of a connection reset; then close the connection.
      await drain(request.raw, DRAIN_CAP_BYTES, DRAIN_DEADLINE_MS);
      void reply.header('connection', 'close');
    }
    if (http.retryAfterSeconds !== undefined) void reply.header('retry-after', String(http.retryAfterSeconds));
    return reply.status(http.status).send(http.body);
  });
  app.setNotFoundHandler((request, reply) => {
    const http = notFound(`no route for ${request.method} ${request.url}`, null, 'route_not_found');
    void reply.status(404).send(http.body);
  });

  // The prefix-cache salt of a request: its tenant's when keys are on.
  const saltOf = options.auth ? registerAuth(app, options.auth) : () => '';
  // NOTE: the routes live in a plugin registered after the key check and rate limit, so those plugins
  // have loaded (and see every route) before any route is added.
  void app.register(async (scope) => registerRoutes(scope, options, saltOf));
  return app;
}

function registerRoutes(
  app: FastifyInstance,
  options: HttpServerOptions,
  saltOf: (request: FastifyRequest) => string,
): void {
  const { backend } = options;
  const tokenize = options.tokenize ?? (async (text: string) => backend.tokenizer.encode(text));
  /**
   * Tokenizes a prompt text, unless it is certainly too long for the context (then 400 without
   * tokenizing); a text with more tokens than the context holds is refused without its ids.
   */
  const encodeChecked = async (text: string): Promise<number[]> => {
    checkPromptLength(text, backend);
    try {
      return await tokenize(text, backend.maxContext);
    } catch (error) {
      if (error instanceof TooManyTokensError) throw contextLengthExceeded(backend.maxContext, error.numTokens);
      throw error;
    }
  };
  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_request, reply) => {
    if (backend.isReady()) return { status: 'ready' };
    return reply.status(503).send({ status: 'not_ready' });
  });
  const modelCard = () => ({
    id: backend.modelId,
    object: 'model',
    created: 0,
    owned_by: 'switchyard',
    root: backend.modelId,
    max_model_len: backend.maxContext,
  });
  app.get('/v1/models', async () => ({ object: 'list', data: [modelCard()] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (request, reply) => {
    if (request.params.id === backend.modelId) return modelCard();
    const http = notFound(`The model '${request.params.id.slice(0, 200)}' does not exist`, 'model', 'model_not_found');
    return reply.status(404).send(http.body);
  });

  app.post<{ Body: CompletionBody }>(
    '/v1/completions',
    { schema: { body: completionSchema } },
    async (request, reply) => {
      const body = request.body;
      checkParameters(body, 'completion');
      checkModel(body, backend);
      const choiceOptions = choiceOptionsOf('completion', body);
      const prompts: PromptJob[] = [];
      for (const prompt of promptsOf(body.prompt, choiceOptions.n)) {
        const promptIds = typeof prompt === 'string' ? await encodeChecked(prompt) : prompt;
        checkPromptIds(promptIds, backend);
        const params = samplingParamsOf(body, promptIds.length, backend, choiceOptions);
        // With echo the prompt comes back as the client sent it; token ids come back decoded.
        const echoText = !choiceOptions.echo
          ? ''
          : typeof prompt === 'string'
            ? prompt
            : backend.tokenizer.decode(promptIds);
        prompts.push({ promptIds, params, echoText });
      }
      const job = jobOf('completion', body, prompts, choiceOptions, request.headers.traceparent, saltOf(request));
      await serveGeneration(backend, job, reply);
    },
  );

  app.post<{ Body: ChatBody }>('/v1/chat/completions', { schema: { body: chatSchema } }, async (request, reply) => {
    const body = request.body;
    checkParameters(body, 'chat');
    checkModel(body, backend);
    const choiceOptions = choiceOptionsOf('chat', body);
    const promptIds = await encodeChecked(renderChat(body.messages, backend.tokenizer));
    checkPromptIds(promptIds, backend);
    const prompt = {
      promptIds,
      params: samplingParamsOf(body, promptIds.length, backend, choiceOptions),
      echoText: '',
    };
    const job = jobOf('chat', body, [prompt], choiceOptions, request.headers.traceparent, saltOf(request));
    await serveGeneration(backend, job, reply);
  });

  options.extraRoutes?.(app);
}

/** Most choices one request may ask for: prompts in a batch × n. */
export const MAX_CHOICES = 64;

/**
 * The prompts of a completion body: a text, a list of token ids, or a batch of either (one list per
 * prompt). A batch whose choices (prompts × n) exceed MAX_CHOICES is refused naming the prompt.
 */
function promptsOf(prompt: CompletionBody['prompt'], n: number): (string | number[])[] {
  if (typeof prompt === 'string') return [prompt];
  const [first] = prompt;
  if (typeof first === 'number') return [prompt as number[]];
  const batch = prompt as string[] | number[][];
  if (batch.length * n > MAX_CHOICES) {
    throw badRequest(
      `prompt is a batch of ${batch.length} prompts with n = ${n}: at most ${MAX_CHOICES} choices per request`,
      'prompt',
      'too_many_choices',
    );
  }
  return batch;
}

function jobOf(
  kind: 'completion' | 'chat',
  body: CompletionBody | ChatBody,
  prompts: readonly PromptJob[],
  options: ChoiceOptions,
  traceparent: string | string[] | undefined,
  cacheSalt: string,
): GenerationJob {
  return {
    ...(typeof traceparent === 'string' ? { traceparent } : {}),
    kind,
    prompts,
    options,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
    cacheSalt,
  };
}

/** Maps anything thrown in a route to the HTTP error the client sees. */
/** Most bytes of a refused body read before answering 413 (a client sending more is cut off). */
const DRAIN_CAP_BYTES = 64 * 2 ** 20;
const DRAIN_DEADLINE_MS = 5_000;

/** Reads and drops the rest of a request's body: until its end, `capBytes` or `deadlineMs`, whichever first. */
function drain(raw: IncomingMessage, capBytes: number, deadlineMs: number): Promise<void> {
  if (raw.readableEnded || raw.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let bytes = 0;
    const timer = setTimeout(done, deadlineMs);
    function done(): void {
      clearTimeout(timer);
      raw.off('data', onData);
      raw.off('end', done);
      raw.off('error', done);
      raw.off('close', done);
      raw.pause();
      resolve();
    }
    function onData(chunk: Buffer): void {
      bytes += chunk.length;
      if (bytes > capBytes) done();
    }
    raw.on('data', onData);
    raw.on('end', done);
    raw.on('error', done);
    raw.on('close', done);
    raw.resume();
  });
}

function toHttpError(error: FastifyError | HttpError): HttpError {
  if (error instanceof HttpError) return error;
  if (error.validation) {
    if (error.validation.some((e) => e.instancePath === '/prompt' || e.instancePath.startsWith('/prompt/'))) {
      return badRequest(
        'prompt must be a string, a list of strings, a list of token ids (integers ≥ 0) or a list of such lists',
        'prompt',
        'invalid_value',
      );
    }
    const first = error.validation[0];
    const param = first?.instancePath
      ? first.instancePath.replace(/^\//, '').replaceAll('/', '.')
      : ((first?.params as { missingProperty?: string } | undefined)?.missingProperty ?? null);
    return badRequest(`invalid request: ${param ?? 'body'} ${first?.message ?? 'is invalid'}`, param, 'invalid_value');
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpError(413, 'invalid_request_error', 'the request body is too large', null, 'request_too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpError(
        415,
        'invalid_request_error',
        'send the body as application/json',
        null,
        'unsupported_media_type',
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return badRequest('the request body is empty', null, 'invalid_json');
    default:
      break;
  }
  if (error instanceof SyntaxError || error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error.statusCode === 400) {
    return badRequest(`the request body is not valid JSON: ${error.message}`, null, 'invalid_json');
  }
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new HttpError(error.statusCode, 'invalid_request_error', error.message);
  }
  return new HttpError(500, 'server_error', 'internal error', null, 'internal_error');
}
