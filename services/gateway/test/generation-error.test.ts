import { describe, expect, it } from 'vitest';
import { RemoteGenerationError } from '@switchyard/cluster';
import { generationError, withoutAddresses } from '../src/http/generation.ts';

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
