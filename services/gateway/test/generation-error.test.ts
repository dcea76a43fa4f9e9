import { describe, expect, it } from 'vitest';
import { RemoteGenerationError } from '@switchyard/cluster';
import { createByteTokenizer, type GenerationBackend } from '@switchyard/engine';
import { generationError, withoutAddresses } from '../src/http/generation.ts';
import { createHttpServer } from '../src/http/server.ts';

describe('generationError', () => {
  it('answers 400 with the code for a request an engine refused, 500 for anything else', () => {
    const refused = generationError(
      new RemoteGenerationError(
        'token id 999999 is outside the vocabulary of 256',
        'RequestRejectedError',
        'invalid_token_id',
      ),
    );
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'invalid_token_id', param: 'prompt' });
    const failed = generationError(new RemoteGenerationError('expert worker lost', 'Error', 'internal'));
    expect(failed.status).toBe(500);
    expect(failed.body.error.code).toBe('generation_failed');
  });

  it('answers 503 with Retry-After for a failure a retry can cure (no live replica, a worker away)', () => {
    const local = Object.assign(new Error('no live worker hosts the experts of 2 token(s) at layer 0'), {
      code: 'no_replica',
    });
    const noReplica = generationError(local);
    expect(noReplica.status).toBe(503);
    expect(noReplica.retryAfterSeconds).toBe(1);
    expect(noReplica.body.error).toMatchObject({ type: 'service_unavailable', code: 'no_replica' });
    const remote = generationError(new RemoteGenerationError('worker gone', 'UnavailableError', 'UNAVAILABLE'));
    expect(remote.status).toBe(503);
  });

  it('never shows an address: URLs, IPs and host:port pairs are replaced', () => {
    const message = generationError(
      new Error(
        'publish failed: nats://alice:pw@10.1.2.3:4222 said MAX_PAYLOAD; worker 127.0.0.1:50051 and nats-0.nats.svc:4222 gone',
      ),
    ).message;
    expect(message).not.toMatch(/4222|50051|10\.1\.2\.3|127\.0\.0\.1|alice|nats-0/);
    expect(message).toContain('MAX_PAYLOAD');
    expect(withoutAddresses('http://localhost:8000/x and localhost:8000')).toBe('<address> and <address>');
  });
});

describe('a generation that fails for want of a live worker, over HTTP', () => {
  it('is a 503 with Retry-After: 1 in OpenAI shape', async () => {
    // A backend whose every request ends the way the engine ends one whose experts have no live worker.
    const backend: GenerationBackend = {
      modelId: 'tiny',
      maxContext: 256,
      vocabSize: 256,
      tokenizer: createByteTokenizer(),
      isReady: () => true,
      canAdmit: () => true,
      submit: (request, sink) => {
        const error = Object.assign(new Error('no live worker hosts the experts of 1 token(s) at layer 0'), {
          code: 'no_replica',
        });
        setImmediate(() =>
          sink({ requestId: request.id, index: 0, tokenId: -1, text: '', finishReason: 'error', error }),
        );
      },
      abort: () => undefined,
    };
    const app = createHttpServer({ backend, bodyLimitBytes: 1 << 16 });
    try {
      const base = await app.listen({ host: '127.0.0.1', port: 0 });
      const res = await fetch(`${base}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny', prompt: 'hi', max_tokens: 2 }),
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('no_replica');
    } finally {
      await app.close();
    }
  });
});
