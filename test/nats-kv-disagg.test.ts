/**
 * Disaggregated prefill and decode, with processes on a real nats-server: a `--role decode` engine hands
 * each new prompt to a `--role prefill` engine, fetches the pages it computed and generates — the same
 * tokens as the colocated monolithic engine; a prompt whose prefix the decode engine already holds is
 * not sent to prefill again; a prefill engine takes no requests of its own.
 *
 * The model is `small` by default. SWITCHYARD_KV_TEST_MODEL (a preset name) with SWITCHYARD_KV_TEST_MODEL_DIR
 * (an existing model directory of it, e.g. bench/out/models/olmoe-slice) runs the same checks on a bigger
 * model, and SWITCHYARD_KV_TEST_WORKERS=n puts the experts on n expert worker processes shared by the
 * engines (so that a model like olmoe-slice fits in memory once).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initModelDir, isPresetName, PRESET_NAMES, type PresetName } from '@switchyard/model';

function presetNamed(name: string): PresetName {
  if (!isPresetName(name)) throw new Error(`SWITCHYARD_KV_TEST_MODEL must be one of ${PRESET_NAMES.join(', ')}`);
  return name;
}
import { createByteTokenizer } from '@switchyard/engine';
import {
  startExpertWorkers,
  startGateway,
  startNatsServer,
  type ExpertWorkerProcesses,
  type ManagedProcess,
  type NatsServer,
} from '@switchyard/launcher';
import { monolithicGreedy } from './helpers/oracle.ts';

const MAX_TOKENS = 8;
const MODEL = presetNamed(process.env['SWITCHYARD_KV_TEST_MODEL'] ?? 'small');
const GIVEN_MODEL_DIR = process.env['SWITCHYARD_KV_TEST_MODEL_DIR'];
const NUM_WORKERS = Number(process.env['SWITCHYARD_KV_TEST_WORKERS'] ?? '0');
let workers: ExpertWorkerProcesses | undefined;
/** Flags that point a gateway at the shared expert workers, when there are any. */
const workerArgs = (): string[] => (workers ? ['--workers', workers.addresses.join(',')] : []);
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

async function complete(prompt: string): Promise<number[]> {
  const res = await fetch(`${decode.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt, max_tokens: MAX_TOKENS, temperature: 0, ignore_eos: true }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { choices: { text: string }[] };
  return tokenizer.encode(body.choices[0]?.text ?? '');
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-disagg-'));
  modelDir = GIVEN_MODEL_DIR ?? join(root, MODEL);
  if (GIVEN_MODEL_DIR === undefined) await initModelDir(modelDir, MODEL, 41);
  if (NUM_WORKERS > 0)
    workers = await startExpertWorkers(modelDir, NUM_WORKERS, { expertDtype: 'fp32', startTimeoutMs: 300_000 });
  nats = await startNatsServer();
  const common = ['--nats-url', nats.url, ...workerArgs()];
  [prefill, decode] = await Promise.all([
    startGateway(modelDir, [...common, '--name', 'prefill-0', '--role', 'prefill']),
    startGateway(modelDir, [...common, '--name', 'decode-0', '--role', 'decode', '--kv-fetch', 'always']),
  ]);
  const events = await monolithicGreedy(modelDir, prompts, MAX_TOKENS);
  oracle = events.map((list) =>
    tokenizer.encode(tokenizer.decode(list.filter((e) => e.tokenId >= 0).map((e) => e.tokenId))),
  );
  const deadline = Date.now() + 15_000;
  while (!(await stats(decode)).liveEngines.includes('prefill-0')) {
    if (Date.now() > deadline) throw new Error('the decode engine never saw the prefill engine');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}, 900_000);

afterAll(async () => {
  await Promise.all([prefill, decode].map((p) => p?.stop(5_000)));
  await workers?.stop(5_000);
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
