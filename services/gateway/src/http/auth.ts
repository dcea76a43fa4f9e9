/**
 * API keys on the HTTP API: `Authorization: Bearer <key>` on every route but /health and /ready (and the
 * metrics, stats and live page when they are public). The key check is @fastify/bearer-auth's (a
 * constant-time comparison against every key); a key names its tenant, whose name salts the prefix
 * cache, so two tenants never share cached blocks unless their keys name the same tenant. Optional
 * per-key rate limits are @fastify/rate-limit's (429 with `Retry-After`).
 */
import { readFile } from 'node:fs/promises';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import bearerAuth from '@fastify/bearer-auth';
import rateLimit from '@fastify/rate-limit';
import { HttpError } from './openai-error.ts';

export interface AuthOptions {
  /** Key → tenant. */
  readonly keys: ReadonlyMap<string, string>;
  /** Serve /metrics, /v1/switchyard/stats and the live page without a key. */
  readonly publicMetrics: boolean;
  /** Requests per key per minute (absent: no limit). */
  readonly requestsPerMinute?: number;
  /** Generation requests one key may have in flight at once (absent: no limit). */
  readonly maxConcurrentPerKey?: number;
}

/** The routes that generate (what a concurrency limit counts). */
const GENERATION_ROUTES = new Set(['/v1/completions', '/v1/chat/completions']);

export class ApiKeysError extends Error {
  override readonly name = 'ApiKeysError';
}

/** Routes served without a key whatever the settings: the orchestrator's probes. */
const ALWAYS_OPEN = new Set(['/health', '/ready']);
/** Routes served without a key when the metrics are public. */
const METRICS_ROUTES = ['/metrics', '/v1/switchyard/stats', '/v1/switchyard/live', '/'];

/**
 * A keys file: one `<key> <tenant>` per line (a key alone is tenant `default`); blank lines and lines
 * starting with `#` are ignored. A key may not appear twice; errors name the line, never the key.
 */
export function parseKeysFile(text: string, source: string): Map<string, string> {
  const keys = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const parts = line.split(/\s+/);
    if (parts.length > 2)
      throw new ApiKeysError(`${source}:${i + 1}: expected "<key> <tenant>", got ${parts.length} fields`);
    const [key = '', tenant = 'default'] = parts;
    if (!/^[\x21-\x7e]{8,256}$/.test(key)) {
      throw new ApiKeysError(`${source}:${i + 1}: a key is 8–256 printable ASCII characters without spaces`);
    }
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(tenant)) {
      throw new ApiKeysError(`${source}:${i + 1}: a tenant is 1–64 of A-Z, a-z, 0-9, '.', '_', '-'`);
    }
    if (keys.has(key)) throw new ApiKeysError(`${source}:${i + 1}: this key is already listed`);
    keys.set(key, tenant);
  });
  return keys;
}

/** The keys from `--api-key` (tenant `default`) and `--api-keys-file`; empty when neither is given. */
export async function loadApiKeys(
  apiKey: string | undefined,
  keysFile: string | undefined,
): Promise<Map<string, string>> {
  const keys = new Map<string, string>();
  if (apiKey !== undefined && apiKey !== '') {
    if (!/^[\x21-\x7e]{8,256}$/.test(apiKey)) {
      throw new ApiKeysError('--api-key must be 8–256 printable ASCII characters without spaces');
    }
    keys.set(apiKey, 'default');
  }
  if (keysFile !== undefined && keysFile !== '') {
    let text: string;
    try {
      text = await readFile(keysFile, 'utf8');
    } catch (error) {
      throw new ApiKeysError(`cannot read --api-keys-file ${keysFile}: ${(error as Error).message}`);
    }
    for (const [key, tenant] of parseKeysFile(text, keysFile)) {
      if (keys.has(key)) throw new ApiKeysError(`${keysFile}: a key is the same as --api-key`);
      keys.set(key, tenant);
    }
    if (keys.size === 0) throw new ApiKeysError(`${keysFile} lists no key`);
  }
  return keys;
}

/** The bearer key of a request, as sent (undefined without a well-formed header). */
function bearerKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer +(\S+)$/.exec(header);
  return match?.[1];
}

/** Whether a route is served without a key. */
function isOpen(url: string, options: AuthOptions): boolean {
  const path = url.split('?')[0] ?? url;
  if (ALWAYS_OPEN.has(path)) return true;
  if (!options.publicMetrics) return false;
  return METRICS_ROUTES.includes(path) || path.startsWith('/live/');
}

/**
 * Adds key checks (and rate limits) to `app`. Returns the prefix-cache salt of a request: its tenant's,
 * so tenants never share cached blocks. Call before the routes are registered.
 */
export function registerAuth(app: FastifyInstance, options: AuthOptions): (request: FastifyRequest) => string {
  const unauthorized = (message: string) =>
    new HttpError(401, 'invalid_request_error', message, null, 'invalid_api_key');
  void app.register(bearerAuth, {
    keys: new Set(options.keys.keys()),
    // The plugin's check only: a failure comes back through `done`, and the gateway's error handler
    // answers it in OpenAI's shape.
    addHook: false,
    verifyErrorLogLevel: 'debug',
  });
  app.addHook('onRequest', (request, reply, done) => {
    if (isOpen(request.url, options)) {
      done();
      return;
    }
    const verify = app.verifyBearerAuth;
    if (verify === undefined) {
      done(unauthorized('API keys are not ready yet'));
      return;
    }
    verify(request, reply, (error?: Error) => {
      if (error === undefined) done();
      else
        done(
          unauthorized(
            /missing/i.test(error.message)
              ? 'You did not provide an API key: send it as "Authorization: Bearer <key>"'
              : 'Incorrect API key provided',
          ),
        );
    });
  });
  if (options.requestsPerMinute !== undefined) {
    void app.register(rateLimit, {
      max: options.requestsPerMinute,
      timeWindow: 60_000,
      // Keys are checked first (onRequest), so every request counted here carries a valid key.
      keyGenerator: (request) => `key:${bearerKey(request) ?? request.ip}`,
      allowList: (request) => isOpen(request.url, options),
      errorResponseBuilder: (_request, context) =>
        new HttpError(
          429,
          'rate_limit_error',
          `Rate limit reached: ${context.max} requests per minute for this key; retry in ${Math.ceil(context.ttl / 1000)} s`,
          null,
          'rate_limit_exceeded',
          Math.ceil(context.ttl / 1000),
        ),
    });
  }
  const limit = options.maxConcurrentPerKey;
  if (limit !== undefined) {
    const inFlight = new Map<string, number>();
    // Runs after the key check above (hooks run in the order they were added).
    app.addHook('onRequest', (request, reply, done) => {
      const key = bearerKey(request);
      if (key === undefined || request.method !== 'POST' || !GENERATION_ROUTES.has(request.url.split('?')[0] ?? '')) {
        done();
        return;
      }
      const n = inFlight.get(key) ?? 0;
      if (n >= limit) {
        done(
          new HttpError(
            429,
            'rate_limit_error',
            `This key already has ${limit} requests in flight; retry when one has finished`,
            null,
            'concurrency_limit_exceeded',
            1,
          ),
        );
        return;
      }
      inFlight.set(key, n + 1);
      reply.raw.once('close', () => {
        const left = (inFlight.get(key) ?? 1) - 1;
        if (left <= 0) inFlight.delete(key);
        else inFlight.set(key, left);
      });
      done();
    });
  }
  return (request) => {
    const key = bearerKey(request);
    const tenant = key === undefined ? undefined : options.keys.get(key);
    return tenant === undefined ? '' : `tenant:${tenant}`;
  };
}
