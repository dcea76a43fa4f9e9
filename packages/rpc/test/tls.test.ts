/**
 * gRPC between gateways and workers under TLS and mutual TLS (issue 12 item 3): a worker that asks for
 * client certificates refuses a gateway without one, one with a certificate from another CA, and a
 * plaintext one; a gateway with the right certificate is served.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectExpertClient, createExpertServer, UnavailableError, type ExpertServer } from '../src/index.ts';
import { channelCredentialsOf, TlsConfigError } from '../src/tls.ts';
import { DESCRIPTION, fakeHandler } from './helpers.ts';
import { makeTestPki } from '../../../test/helpers/pki.ts';

let dir = '';
let file: (name: string) => string;

let server: ExpertServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-tls-'));
  file = await makeTestPki(dir);
  server = await createExpertServer({
    handler: fakeHandler(async (request) => ({ output: request.hidden })),
    host: '127.0.0.1',
    port: 0,
    tls: { certFile: file('worker.pem'), keyFile: file('worker.key'), clientCaFile: file('ca.pem') },
  });
});

afterAll(async () => {
  await server?.close(0);
  await rm(dir, { recursive: true, force: true });
});

const connect = (tls?: { caFile: string; certFile?: string; keyFile?: string }) =>
  connectExpertClient(`127.0.0.1:${server.port}`, {
    deadlineMs: 3_000,
    connectDeadlineMs: 3_000,
    ...(tls ? { tls } : {}),
  });

describe('gRPC mutual TLS between gateway and worker', () => {
  it('serves a gateway whose certificate the worker’s CA signed', async () => {
    const client = await connect({
      caFile: file('ca.pem'),
      certFile: file('gateway.pem'),
      keyFile: file('gateway.key'),
    });
    try {
      await expect(client.describe()).resolves.toEqual(DESCRIPTION);
    } finally {
      client.close();
    }
  });

  it('refuses a gateway without a client certificate, with one from another CA, and in plaintext', async () => {
    for (const tls of [
      { caFile: file('ca.pem') },
      { caFile: file('ca.pem'), certFile: file('stranger.pem'), keyFile: file('stranger.key') },
      undefined,
    ]) {
      const attempt = connect(tls).then(
        async (client) => {
          // The handshake may complete before the server checks the certificate: the first call fails then.
          try {
            return await client.describe({ deadlineMs: 3_000 });
          } finally {
            client.close();
          }
        },
        (error: unknown) => {
          throw error;
        },
      );
      await expect(attempt).rejects.toBeInstanceOf(Error);
    }
  });

  it('refuses a worker whose certificate another CA signed', async () => {
    const attempt = connect({
      caFile: file('other-ca.pem'),
      certFile: file('gateway.pem'),
      keyFile: file('gateway.key'),
    });
    await expect(attempt).rejects.toBeInstanceOf(UnavailableError);
  });

  it('needs a client key with a client certificate', () => {
    expect(() => channelCredentialsOf({ caFile: file('ca.pem'), certFile: file('gateway.pem') })).toThrow(
      TlsConfigError,
    );
  });
});
