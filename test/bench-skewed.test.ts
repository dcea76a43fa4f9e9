import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineLoop, resolveSamplingParams } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import { getPreset, initModelDir, randomWeights, ROUTER_SKEW } from '@switchyard/model';
import { ATTR_EXPERT, ATTR_LAYER, METRIC_EXPERT_TOKENS } from '@switchyard/telemetry/names';
import {
  heatmapCells,
  heatmapSpec,
  renderSvg,
  parseExposition,
  runAgainstServer,
  serverMetricsOf,
} from '@switchyard/loadgen';
import { startLocalCluster, freePort, type LocalCluster } from '@switchyard/launcher';
import { otelExposition } from '@switchyard/telemetry/testing';

const config = getPreset('skewed');

/** Expert 0 is the busiest of every layer and takes far more than a fair share (1/16). */
function expectHotExpertZero(counts: readonly (readonly number[])[]): void {
  for (const row of counts) {
    const sum = row.reduce((a, b) => a + b, 0);
    expect(row.indexOf(Math.max(...row))).toBe(0);
    expect((row[0] ?? 0) / sum).toBeGreaterThan(0.25);
  }
}

describe('the skewed preset', () => {
  it('has a deterministic Zipf-like selection bias, −scale × ln(e + 1), the same for every seed', () => {
    const a = randomWeights(config, 1).get('model.layers.0.mlp.gate.e_score_correction_bias')?.data;
    const b = randomWeights(config, 2).get('model.layers.3.mlp.gate.e_score_correction_bias')?.data;
    const scale = ROUTER_SKEW.skewed?.zipfBiasScale ?? 0;
    expect(Array.from(a ?? [])).toEqual(Array.from(b ?? []));
    expect(a?.[0]).toBe(0);
    expect(a?.[15]).toBeCloseTo(-scale * Math.log(16), 6);
    // Other presets keep their random init: tiny has no selection bias at all.
    expect(randomWeights(getPreset('tiny'), 1).has('model.layers.0.mlp.gate.e_score_correction_bias')).toBe(false);
  });

  it('routes most tokens to a few experts; the heatmap and balancedness read from the counters show it', async () => {
    // The engine's own routing decisions, counted as the gateway's telemetry counts them …
    const counts = Array.from({ length: config.numLayers }, () => new Array<number>(config.numExperts).fill(0));
    const bundle = await createEngine(
      { config, weights: randomWeights(config, 7), weightsDigest: 'ab'.repeat(32) },
      {
        expertDtype: 'fp32',
        denseDtype: 'fp32',
        blockSize: 16,
        scheduler: { maxBatchedTokens: 1024, maxRunningSequences: 8 },
        onRouted: (layer, _chunks, routes) => {
          const row = counts[layer];
          if (row) for (const e of routes.expertIds) row[e] = (row[e] ?? 0) + 1;
        },
      },
    );
    const loop = new EngineLoop(bundle.engine);
    try {
      const params = resolveSamplingParams({ maxTokens: 8, temperature: 0, stopAtEos: false });
      await Promise.all(
        Array.from({ length: 4 }, (_, i) =>
          loop.generate({
            id: `r${i}`,
            promptIds: Array.from({ length: 48 }, (_, j) => (i * 37 + j * 11) % 256),
            params,
          }),
        ),
      );
    } finally {
      await loop.stop();
      await bundle.close();
    }
    // … exported through the OpenTelemetry Prometheus exporter under the telemetry package's names …
    const exposition = otelExposition((meter) =>
      meter
        .createObservableCounter(METRIC_EXPERT_TOKENS)
        .addCallback((r) =>
          counts.forEach((row, layer) =>
            row.forEach((n, expert) => n > 0 && r.observe(n, { [ATTR_LAYER]: layer, [ATTR_EXPERT]: expert })),
          ),
        ),
    );
    const after = await exposition.expose();
    await exposition.close();
    // … and read back by the bench from an empty "before".
    const report = serverMetricsOf(
      { ok: true, exposition: parseExposition('') },
      { ok: true, exposition: parseExposition(after) },
      { numLayers: 4, numExperts: 16 },
    );
    if (!report.available || !report.expertLoad || !report.balancedness)
      throw new Error('no expert load in the report');
    expect(report.expertLoad.counts).toEqual(counts);
    expectHotExpertZero(report.expertLoad.counts);
    const expected = counts.map((row) => row.reduce((a, b) => a + b, 0) / row.length / Math.max(...row));
    expect(report.balancedness).toEqual(expected);
    for (const b of report.balancedness) expect(b).toBeLessThan(0.3);
    // The heatmap's data: 4 × 16 cells whose hottest per layer is expert 0.
    const cells = heatmapCells(report.expertLoad);
    expect(cells).toHaveLength(64);
    for (let layer = 0; layer < 4; layer++) {
      const row = cells.filter((c) => c.layer === layer);
      expect(row.reduce((best, c) => (c.tokens > best.tokens ? c : best)).expert).toBe(0);
    }
    const svg = await renderSvg(heatmapSpec(cells, 'skewed'));
    expect(svg.startsWith('<svg')).toBe(true);
  });
});

describe('the skewed preset behind a real gateway', () => {
  let dir = '';
  let cluster: LocalCluster | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bench-skewed-'));
    await initModelDir(join(dir, 'skewed'), 'skewed', 7);
    const options = {
      expertDtype: 'fp32',
      placement: 'contiguous',
      replication: 1,
      microBatches: 1,
      startTimeoutMs: 60_000,
      log: () => {},
    } as const;
    cluster = await startLocalCluster({
      ...options,
      modelDir: join(dir, 'skewed'),
      workers: 2,
      host: '127.0.0.1',
      port: await freePort(),
    });
  });
  afterAll(async () => {
    await cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  // Needs the gateway's /metrics (the telemetry issue); skipped, saying so, until it is served.
  it('reports hot experts and a balancedness equal to the one computed from the gateway’s own counters', async () => {
    const url = cluster?.url ?? '';
    const rawBefore = await fetch(`${url}/metrics`).then((r) => (r.status === 200 ? r.text() : ''));
    const runs = await runAgainstServer(
      { baseUrl: url, series: 'skewed', cluster: undefined, shape: { numLayers: 4, numExperts: 16 } },
      { kind: 'random', inputLen: 32, outputLen: 8, rangeRatio: 0, prefixLen: 0 },
      [{ maxConcurrency: 8, numPrompts: 12, requestRate: Infinity, burstiness: 1 }],
      {
        seed: 1,
        percentiles: [99],
        goodput: {},
        vocabSize: 256,
        temperature: 0,
        durationMs: Infinity,
        gracePeriodMs: 0,
        requestTimeoutMs: 30_000,
        model: undefined,
        warmUp: false,
      },
      { signal: new AbortController().signal, log: () => {}, progress: () => ({ update: () => {}, stop: () => {} }) },
    );
    const run = runs[0];
    expect(run?.metrics.completed).toBe(12);
    if (!run?.server.available)
      throw new Error(`the gateway serves no /metrics: ${run?.server.available === false ? run.server.reason : ''}`);
    const load = run.server.expertLoad;
    if (!load) throw new Error(`no expert token counts on /metrics; missing ${run.server.missing.join(', ')}`);
    expectHotExpertZero(load.counts);
    // Independently of the bench's parser: the gateway's counters before and after, read with a regex.
    const rawAfter = await (await fetch(`${url}/metrics`)).text();
    const byExpert = (text: string) => {
      const counts = Array.from({ length: 4 }, () => new Array<number>(16).fill(0));
      for (const m of text.matchAll(/^switchyard_expert_tokens_total\{([^}]*)\} (\S+)/gm)) {
        const layer = Number(/switchyard_layer="(\d+)"/.exec(m[1] ?? '')?.[1]);
        const expert = Number(/switchyard_expert="(\d+)"/.exec(m[1] ?? '')?.[1]);
        const row = counts[layer];
        if (row) row[expert] = (row[expert] ?? 0) + Number(m[2]);
      }
      return counts;
    };
    const [b, a] = [byExpert(rawBefore), byExpert(rawAfter)];
    const runCounts = a.map((row, l) => row.map((n, e) => n - (b[l]?.[e] ?? 0)));
    expect(load.counts).toEqual(runCounts);
    const balancedness = runCounts.map((row) => row.reduce((s, n) => s + n, 0) / 16 / Math.max(...row));
    run.server.balancedness?.forEach((value, layer) => expect(value).toBeCloseTo(balancedness[layer] ?? NaN, 12));
    // Every computed row routes to top-2 experts at every layer: per request, the prompt rows not found in
    // the prefix cache plus every generated token but the last.
    const cached = run.server.prefixCache?.hitTokens ?? 0;
    const rows = run.load.outputs.reduce((a, o) => a + o.promptLen + o.outputTokens - 1, 0) - cached;
    for (const row of load.counts) expect(row.reduce((a, b) => a + b, 0)).toBe(2 * rows);
  });
});
