import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPreset, initModelDir } from '@switchyard/model';
import { startGateway, type ManagedProcess } from '@switchyard/launcher';

const config = getPreset('tiny');
const WINDOW_S = 3;
let root = '';
let gateway: ManagedProcess & { url: string };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-expert-load-'));
  await initModelDir(join(root, 'tiny'), 'tiny', 4);
  gateway = await startGateway(join(root, 'tiny'), ['--expert-load-window-s', String(WINDOW_S)]);
}, 120_000);

afterAll(async () => {
  await gateway?.kill('SIGTERM');
  await rm(root, { recursive: true, force: true });
});

const stats = async () =>
  (await (await fetch(`${gateway.url}/v1/switchyard/stats`)).json()) as {
    expertLoadWindowS: number;
    expertLoad: number[][];
  };

/** Samples of `switchyard_expert_window_tokens` by layer. */
async function scrapedPerLayer(): Promise<number[]> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  const perLayer = new Array<number>(config.numLayers).fill(0);
  for (const m of text.matchAll(/^switchyard_expert_window_tokens\{([^}]*)\} (\S+)$/gm)) {
    const layer = Number(/switchyard_layer="(\d+)"/.exec(m[1] ?? '')?.[1]);
    perLayer[layer] = (perLayer[layer] ?? 0) + Number(m[2]);
  }
  return perLayer;
}

describe('expert load statistics on the gateway', () => {
  it('counts the pairs it routed per layer and expert over the window, in the stats and on /metrics, and forgets them after it', async () => {
    const res = await fetch(`${gateway.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', prompt: 'Expert load', max_tokens: 5, temperature: 0, ignore_eos: true }),
    });
    const { usage } = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
    // Every computed row (the prompt and each generated token but the last) picks topK experts per layer.
    const pairsPerLayer = (usage.prompt_tokens + usage.completion_tokens - 1) * config.numExpertsPerToken;
    const now = await stats();
    expect(now.expertLoadWindowS).toBe(WINDOW_S);
    expect(now.expertLoad).toHaveLength(config.numLayers);
    for (const row of now.expertLoad) {
      expect(row).toHaveLength(config.numExperts);
      expect(row.reduce((a, b) => a + b, 0)).toBe(pairsPerLayer);
    }
    expect(await scrapedPerLayer()).toEqual(new Array(config.numLayers).fill(pairsPerLayer));
    // A window (and one bucket of it) later, nothing is left.
    await new Promise((resolve) => setTimeout(resolve, WINDOW_S * 1000 + 500));
    const later = await stats();
    for (const row of later.expertLoad) expect(row.reduce((a, b) => a + b, 0)).toBe(0);
    expect(await scrapedPerLayer()).toEqual(new Array(config.numLayers).fill(0));
  }, 60_000);
});
