/**
 * The model the KV process tests run on: `small`, written to a temporary folder, by default. With
 * SWITCHYARD_KV_TEST_MODEL (a preset name) and SWITCHYARD_KV_TEST_MODEL_DIR (an existing model directory
 * of it) the same tests run on a bigger model, and SWITCHYARD_KV_TEST_WORKERS=n puts the experts on n
 * expert worker processes shared by every engine, so that a model like olmoe-slice is in memory once.
 */
import { join } from 'node:path';
import { createByteTokenizer } from '@switchyard/engine';
import { initModelDir, isPresetName, PRESET_NAMES, type PresetName } from '@switchyard/model';
import { startExpertWorkers, type ExpertWorkerProcesses } from '@switchyard/launcher';

export interface KvTestModel {
  readonly preset: PresetName;
  readonly modelDir: string;
  /** Flags that point a gateway at the shared expert workers (none without workers). */
  readonly workerArgs: readonly string[];
  stop(): Promise<void>;
}

function presetNamed(name: string): PresetName {
  if (!isPresetName(name)) throw new Error(`SWITCHYARD_KV_TEST_MODEL must be one of ${PRESET_NAMES.join(', ')}`);
  return name;
}

/** The preset the tests run on (for request bodies), known before the model is opened. */
export const KV_TEST_PRESET = presetNamed(process.env['SWITCHYARD_KV_TEST_MODEL'] ?? 'small');

/** Writes (or finds) the test model under `root` and starts the shared expert workers, if asked for. */
export async function openKvTestModel(root: string, seed: number): Promise<KvTestModel> {
  const given = process.env['SWITCHYARD_KV_TEST_MODEL_DIR'];
  const modelDir = given ?? join(root, KV_TEST_PRESET);
  if (given === undefined) await initModelDir(modelDir, KV_TEST_PRESET, seed);
  const numWorkers = Number(process.env['SWITCHYARD_KV_TEST_WORKERS'] ?? '0');
  const workers: ExpertWorkerProcesses | undefined =
    numWorkers > 0
      ? await startExpertWorkers(modelDir, numWorkers, { expertDtype: 'fp32', startTimeoutMs: 300_000 })
      : undefined;
  return {
    preset: KV_TEST_PRESET,
    modelDir,
    workerArgs: workers ? ['--workers', workers.addresses.join(',')] : [],
    stop: async () => workers?.stop(5_000),
  };
}

const tokenizer = createByteTokenizer();

/** A greedy completion (EOS ignored) from a gateway's HTTP API, as byte-tokenizer token ids. */
export async function greedyTokens(baseUrl: string, prompt: string, maxTokens: number): Promise<number[]> {
  const res = await fetch(`${baseUrl}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: KV_TEST_PRESET, prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true }),
  });
  if (res.status !== 200) throw new Error(`completion answered ${res.status}: ${await res.text()}`);
  const body = (await res.json()) as { choices: { text: string }[] };
  return tokenizer.encode(body.choices[0]?.text ?? '');
}
