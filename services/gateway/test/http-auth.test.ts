/**
 * API keys on the HTTP API (issue 12 item 3, HTTP part): 401 in OpenAI's shape without a key or with a
 * wrong one, /health and /ready open, metrics behind their own setting, tenants' prefix caches apart,
 * and a per-key rate limit answering 429 with Retry-After.
 */
import { request } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { getPreset, randomWeights } from '@switchyard/model';
import { EngineLoop, type EngineBundle } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import { createHttpServer } from '../src/http/server.ts';
import { ApiKeysError, loadApiKeys, parseKeysFile } from '../src/http/auth.ts';
import { LocalBackend } from '../src/local-backend.ts';

const config = getPreset('tiny');
const model = { config, weights: randomWeights(config, 3), weightsDigest: 'cd'.repeat(32) };
const KEY_A = 'sk-tenant-a-0001';
const KEY_A2 = 'sk-tenant-a-0002';
const KEY_B = 'sk-tenant-b-0001';

let bundle: EngineBundle;
let loop: EngineLoop;
const apps: FastifyInstance[] = [];
let root = '';

async function serve(auth: Parameters<typeof createHttpServer>[0]['auth']): Promise<string> {
  const backend = new LocalBackend(bundle, loop, 16);
  const app = createHttpServer({
    backend,
    bodyLimitBytes: 64 * 1024,
    ...(auth ? { auth } : {}),
    extraRoutes: (scope) => scope.get('/metrics', async () => 'metrics'),
  });
  apps.push(app);
  return app.listen({ host: '127.0.0.1', port: 0 });
}

const complete = (url: string, key: string | undefined, prompt = 'The same long prompt for every tenant here.') =>
  fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({ model: 'tiny', prompt, max_tokens: 2, temperature: 0 }),
  });

const cachedTokens = async (res: Response) => {
  expect(res.status).toBe(200);
  const body = (await res.json()) as { usage: { prompt_tokens_details: { cached_tokens: number } } };
  return body.usage.prompt_tokens_details.cached_tokens;
};

let keysFile = '';
let url = '';

beforeAll(async () => {
  bundle = await createEngine(model, {
    expertDtype: 'fp32',
    denseDtype: 'fp32',
    blockSize: 4,
    scheduler: { maxBatchedTokens: 128, maxRunningSequences: 8 },
  });
  loop = new EngineLoop(bundle.engine);
  root = await mkdtemp(join(tmpdir(), 'switchyard-keys-'));
  keysFile = join(root, 'keys');
  await writeFile(keysFile, `# tenants\n${KEY_A} tenant-a\n${KEY_A2} tenant-a\n\n${KEY_B} tenant-b\n`);
  url = await serve({ keys: await loadApiKeys(undefined, keysFile), publicMetrics: false });
});

afterAll(async () => {
  for (const app of apps) await app.close();
  await loop.stop();
  await bundle.close();
  await rm(root, { recursive: true, force: true });
});

describe('API keys', () => {
  it('answers 401 in OpenAI’s error shape without a key or with a wrong one, and serves with a right one', async () => {
    for (const key of [undefined, 'sk-not-a-key-at-all']) {
      const res = await complete(url, key);
      expect(res.status).toBe(401);
      const body = (await res.json()) as { error: { type: string; code: string; message: string; param: null } };
      expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_api_key', param: null });
      expect(body.error.message).not.toContain('sk-');
    }
    const malformed = await fetch(`${url}/v1/models`, { headers: { authorization: 'Basic abc' } });
    expect(malformed.status).toBe(401);
    expect((await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${KEY_B}` } })).status).toBe(200);
    expect((await complete(url, KEY_A)).status).toBe(200);
  });

  it('keeps /health and /ready open, and the metrics behind a key unless they are public', async () => {
    expect((await fetch(`${url}/health`)).status).toBe(200);
    expect((await fetch(`${url}/ready`)).status).toBe(200);
    expect((await fetch(`${url}/metrics`)).status).toBe(401);
    expect((await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${KEY_A}` } })).status).toBe(200);
    const open = await serve({ keys: new Map([[KEY_A, 'tenant-a']]), publicMetrics: true });
    expect((await fetch(`${open}/metrics`)).status).toBe(200);
    expect((await complete(open, undefined)).status).toBe(401);
  });

  it('gives each tenant its own prefix cache: the same prompt hits only within a tenant', async () => {
    const prompt = 'Tenants never share cached blocks unless their keys name the same tenant.';
    expect(await cachedTokens(await complete(url, KEY_A, prompt))).toBe(0);
    // Another key of tenant-a shares tenant-a's cache.
    expect(await cachedTokens(await complete(url, KEY_A2, prompt))).toBeGreaterThan(0);
    // tenant-b sends the very same prompt: nothing cached for it.
    expect(await cachedTokens(await complete(url, KEY_B, prompt))).toBe(0);
    expect(await cachedTokens(await complete(url, KEY_B, prompt))).toBeGreaterThan(0);
  });

  it('limits requests per key per minute with 429 and Retry-After, each key on its own', async () => {
    const limited = await serve({
      keys: new Map([
        [KEY_A, 'tenant-a'],
        [KEY_B, 'tenant-b'],
      ]),
      publicMetrics: false,
      requestsPerMinute: 2,
    });
    expect((await complete(limited, KEY_A)).status).toBe(200);
    expect((await complete(limited, KEY_A)).status).toBe(200);
    const third = await complete(limited, KEY_A);
    expect(third.status).toBe(429);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = (await third.json()) as { error: { type: string; code: string } };
    expect(body.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    expect((await complete(limited, KEY_B)).status).toBe(200);
    expect((await fetch(`${limited}/health`)).status).toBe(200);
  });

  it('limits the requests one key has in flight with 429, and frees the slot when a request ends', async () => {
    const limited = await serve({
      keys: new Map([
        [KEY_A, 'tenant-a'],
        [KEY_B, 'tenant-b'],
      ]),
      publicMetrics: false,
      maxConcurrentPerKey: 1,
    });
    // A request whose body is still arriving is in flight: it holds the key's one slot.
    const body = JSON.stringify({ model: 'tiny', prompt: 'held', max_tokens: 2, temperature: 0 });
    const { hostname, port } = new URL(limited);
    const held = request({
      hostname,
      port,
      path: '/v1/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': body.length, authorization: `Bearer ${KEY_A}` },
    });
    const heldStatus = new Promise<number>((resolve, reject) => {
      held.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      held.on('error', reject);
    });
    held.write(body.slice(0, 10));
    held.flushHeaders();
    // The server has taken the held request once another request on the same key is refused.
    let second: Response | undefined;
    for (let i = 0; i < 50; i++) {
      second = await complete(limited, KEY_A);
      if (second.status === 429) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(second?.status).toBe(429);
    expect(second?.headers.get('retry-after')).toBe('1');
    expect(((await second?.json()) as { error: { code: string } }).error.code).toBe('concurrency_limit_exceeded');
    // Another key is not held up.
    expect((await complete(limited, KEY_B)).status).toBe(200);
    held.end(body.slice(10));
    expect(await heldStatus).toBe(200);
    // Its slot is free again once it has ended.
    let after = 0;
    for (let i = 0; i < 50 && after !== 200; i++) {
      after = (await complete(limited, KEY_A)).status;
      if (after !== 200) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(after).toBe(200);
  });

  it('reads a keys file strictly: errors name the line, never the key', () => {
    expect(parseKeysFile('k-12345678 team\n# c\n\nk-87654321\n', 'f')).toEqual(
      new Map([
        ['k-12345678', 'team'],
        ['k-87654321', 'default'],
      ]),
    );
    expect(() => parseKeysFile('short t', 'f')).toThrow(/f:1: a key is 8–256/);
    expect(() => parseKeysFile('k-12345678 a b', 'f')).toThrow(/f:1: expected/);
    expect(() => parseKeysFile('k-12345678 bad/tenant', 'f')).toThrow(/f:1: a tenant/);
    expect(() => parseKeysFile('k-12345678 a\nk-12345678 b', 'f')).toThrow(ApiKeysError);
    expect(() => parseKeysFile('k-12345678 a\nk-12345678 b', 'f')).not.toThrow(/k-12345678/);
  });
});
