/**
 * Disaggregated prefill and decode, with processes on a real nats-server: a `--role decode` engine hands
 * each new prompt to a `--role prefill` engine, fetches the pages it computed and generates — the same
 * tokens as the colocated monolithic engine; a prompt whose prefix the decode engine already holds is
 * not sent to prefill again; a prefill engine takes no requests of its own.
 *
 * The model: test/helpers/kv-test-model.ts (`small` by default; olmoe-slice and others by environment).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createByteTokenizer } from '@switchyard/engine';
import { startGateway, startNatsServer, type ManagedProcess, type NatsServer } from '@switchyard/launcher';
import { greedyTokens, openKvTestModel, type KvTestModel } from './helpers/kv-test-model.ts';
import { monolithicGreedy } from './helpers/oracle.ts';

const MAX_TOKENS = 8;
let testModel: KvTestModel | undefined;
const workerArgs = (): readonly string[] => testModel?.workerArgs ?? [];
const tokenizer = createByteTokenizer();
type Gateway = ManagedProcess & { url: string };

const shared = Array.from({ length: 512 }, (_, i) => String.fromCharCode(97 + ((i * 11 + (i >> 4)) % 26))).join('');
const prompts = [`${shared} first question?`, `${shared} second question, a longer one?`, 'short one'];

let root = '';
let modelDir = '';
let nats: NatsServer;
let prefill: Gateway;
let decode: Gateway;
let oracle: number[][] = [];

interface Stats {
  served: number;
  prefillJobs: number;
  prefillJobFailures: number;
  kvFetchedBlocks: number;
  kvServedPages: number;
  liveEngines: string;
  role: string;
}
const stats = async (g: Gateway) => (await (await fetch(`${g.url}/v1/switchyard/stats`)).json()) as Stats;

const complete = (prompt: string): Promise<number[]> => greedyTokens(decode.url, prompt, MAX_TOKENS);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-disagg-'));
  testModel = await openKvTestModel(root, 41);
  modelDir = testModel.modelDir;
  // The oracle first, in its own process: with a big model, its weights are gone before the engines load.
  const events = await monolithicGreedy(modelDir, prompts, MAX_TOKENS);
  oracle = events.map((list) =>
    tokenizer.encode(tokenizer.decode(list.filter((e) => e.tokenId >= 0).map((e) => e.tokenId))),
  );
  nats = await startNatsServer();
  const common = ['--nats-url', nats.url, ...workerArgs()];
  [prefill, decode] = await Promise.all([
    startGateway(modelDir, [...common, '--name', 'prefill-0', '--role', 'prefill']),
    startGateway(modelDir, [...common, '--name', 'decode-0', '--role', 'decode', '--kv-fetch', 'always']),
  ]);
  const deadline = Date.now() + 15_000;
  while (!(await stats(decode)).liveEngines.includes('prefill-0')) {
    if (Date.now() > deadline) throw new Error('the decode engine never saw the prefill engine');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}, 900_000);

afterAll(async () => {
  await Promise.all([prefill, decode].map((p) => p?.stop(5_000)));
  await testModel?.stop();
  await nats?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('disaggregated prefill and decode', () => {
  it('computes a new prompt on the prefill engine, fetches its pages, and gives the colocated tokens', async () => {
    expect(await complete(prompts[0] ?? '')).toEqual(oracle[0]);
    const d = await stats(decode);
    const p = await stats(prefill);
    expect(d.role).toBe('decode');
    expect(d.served).toBe(1);
    expect(d.prefillJobs).toBe(1);
    expect(d.prefillJobFailures).toBe(0);
    const usable = Math.floor((tokenizer.encode(prompts[0] ?? '').length - 1) / 16);
    expect(d.kvFetchedBlocks).toBe(usable);
    expect(p.served).toBe(1); // the prefill job, not the request
    expect(p.kvServedPages).toBe(usable);
  });

  it('fetches only the new part of a prompt whose shared prefix the decode engine holds', async () => {
    const before = await stats(decode);
    expect(await complete(prompts[1] ?? '')).toEqual(oracle[1]);
    const after = await stats(decode);
    expect(after.prefillJobs).toBe(before.prefillJobs + 1);
    const usable = Math.floor((tokenizer.encode(prompts[1] ?? '').length - 1) / 16);
    expect(after.kvFetchedBlocks - before.kvFetchedBlocks).toBe(usable - 32);
  });

  it('computes a prompt shorter than a block itself (nothing to hand over)', async () => {
    const before = await stats(decode);
    expect(await complete(prompts[2] ?? '')).toEqual(oracle[2]);
    expect((await stats(decode)).prefillJobs).toBe(before.prefillJobs);
  });
});
