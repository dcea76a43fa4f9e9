/**
 * Mutual TLS between a gateway and expert worker processes (issue 12 acceptance 4): a worker started
 * with --tls-cert/--tls-key/--tls-client-ca refuses a gateway without a client certificate, and serves
 * one with a certificate its CA signed — the same tokens as the monolithic engine.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir, loadModelDir } from '@switchyard/model';
import { EngineLoop, resolveSamplingParams, type TokenEvent } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import { connectExpertCluster } from '@switchyard/dispatch';
import { startWorker, type ManagedProcess } from '@switchyard/launcher';
import { makeTestPki } from './helpers/pki.ts';

let root = '';
let file: (name: string) => string;
let worker: ManagedProcess & { address: string };
const modelDir = () => join(root, 'tiny');
const engineOptions = {
  expertDtype: 'fp32',
  denseDtype: 'fp32',
  blockSize: 16,
  scheduler: { maxBatchedTokens: 256, maxRunningSequences: 4 },
} as const;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-mtls-'));
  file = await makeTestPki(root);
  await initModelDir(modelDir(), 'tiny', 21);
  worker = await startWorker(modelDir(), 'mtls-w0', [
    '--tls-cert',
    file('worker.pem'),
    '--tls-key',
    file('worker.key'),
    '--tls-client-ca',
    file('ca.pem'),
  ]);
}, 120_000);

afterAll(async () => {
  await worker?.kill();
  await rm(root, { recursive: true, force: true });
});

const connect = async (tls: { caFile: string; certFile?: string; keyFile?: string } | undefined) => {
  const dense = await loadModelDir(modelDir(), { routedExperts: false });
  const cluster = await connectExpertCluster({
    addresses: [worker.address],
    config: dense.config,
    weightsDigest: dense.weightsDigest,
    strategy: 'contiguous',
    replication: 1,
    deadlineMs: 5_000,
    connectTimeoutMs: 3_000,
    ...(tls ? { tls } : {}),
  });
  return { dense, cluster };
};

describe('gateway ↔ worker under mutual TLS', () => {
  it('says so when it starts', () => {
    expect(worker.output()).toMatch(/serving tiny .*mutual TLS/);
  });

  it('refuses a gateway without a client certificate, and one speaking plaintext', async () => {
    await expect(connect({ caFile: file('ca.pem') })).rejects.toThrow(/not reachable|expert worker/);
    await expect(connect(undefined)).rejects.toThrow(/not reachable|expert worker/);
  }, 30_000);

  it('serves a gateway with a certificate its CA signed, with the monolithic engine’s tokens', async () => {
    const { dense, cluster } = await connect({
      caFile: file('ca.pem'),
      certFile: file('gateway.pem'),
      keyFile: file('gateway.key'),
    });
    const dist = await createEngine(dense, engineOptions, cluster.executor);
    const mono = await createEngine(await loadModelDir(modelDir()), engineOptions);
    try {
      const greedy = resolveSamplingParams({ maxTokens: 8, temperature: 0, stopAtEos: false });
      const run = async (bundle: typeof dist) => {
        const loop = new EngineLoop(bundle.engine);
        const events: TokenEvent[] = [];
        await new Promise<void>((resolve) =>
          loop.submit({ id: 'm', promptIds: [72, 101, 108, 108, 111], params: greedy }, (e) => {
            events.push(e);
            if (e.finishReason !== undefined) resolve();
          }),
        );
        await loop.stop();
        return events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId);
      };
      expect(await run(dist)).toEqual(await run(mono));
    } finally {
      await dist.close();
      await mono.close();
    }
  }, 60_000);
});
