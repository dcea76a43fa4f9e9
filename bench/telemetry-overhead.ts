/**
 * `npm run bench:telemetry`: decode throughput of the same engine with tracing off, at `summary`
 * (default) and at `tokens` detail, in one run, as one JSON document. Each level runs in rounds,
 * interleaved with the others, and the best round counts, so machine noise hits all levels alike.
 * Spans go to a JSON-lines file (the real exporter path); metrics to the Prometheus reader.
 *
 *   npm run bench:telemetry -- --model small --batch 32 --steps 20 --rounds 3
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { getPreset, randomWeights, type PresetName } from '@switchyard/model';
import { resolveSamplingParams, type EngineBundle, type RoutingObserver } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import { EngineTelemetry, startTelemetry, type TraceDetail } from '@switchyard/telemetry';
import { benchArgs } from './args.ts';

const USAGE = 'usage: npm run bench:telemetry -- [--model small] [--batch 32] [--steps 20] [--rounds 3]\n';
const values = benchArgs('bench:telemetry', USAGE, () =>
  parseArgs({
    options: {
      model: { type: 'string', default: 'small' },
      batch: { type: 'string', default: '32' },
      steps: { type: 'string', default: '20' },
      rounds: { type: 'string', default: '3' },
      help: { type: 'boolean', short: 'h' },
    },
  }),
);
const batch = Number(values.batch);
const steps = Number(values.steps);
const log = (msg: string) => process.stderr.write(`[bench:telemetry] ${msg}\n`);

const config = getPreset(values.model as PresetName);
const weights = randomWeights(config, 1);
let observer: RoutingObserver = () => {};
const bundle: EngineBundle = await createEngine(
  { config, weights, weightsDigest: '00'.repeat(32) },
  {
    expertDtype: 'fp32',
    denseDtype: 'fp32',
    blockSize: 16,
    scheduler: { maxBatchedTokens: 2048, maxRunningSequences: batch },
    onRouted: (l, c, r) => observer(l, c, r),
  },
);
const dir = await mkdtemp(join(tmpdir(), 'switchyard-otel-bench-'));

/** Tokens/s of `steps` decode steps at `batch`, with telemetry at `detail` (or none at all for 'off'). */
async function round(detail: TraceDetail, index: number): Promise<number> {
  const telemetry =
    detail === 'off'
      ? undefined
      : await startTelemetry({
          serviceName: 'bench',
          detail,
          traceFile: join(dir, `${detail}-${index}.jsonl`),
          prometheus: 'handler',
        });
  const et = telemetry ? new EngineTelemetry(telemetry, { config, expertDtype: 'fp32' }) : undefined;
  observer = et ? et.onRouted : () => {};
  const step = () => (et ? et.traceStep(() => bundle.engine.step()) : bundle.engine.step());
  const params = resolveSamplingParams({ maxTokens: steps + 4, temperature: 0, stopAtEos: false });
  for (let i = 0; i < batch; i++) {
    const id = `${detail}-${index}-${i}`;
    const handle = et?.startRequest({ operation: 'text_completion', model: config.name, requestId: id });
    const sink = handle ? handle.wrapSink(() => {}) : () => {};
    bundle.engine.add({ id, promptIds: Array.from({ length: 16 }, (_, t) => (i * 31 + t * 7) % 256), params }, sink);
  }
  await step();
  await step();
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) await step();
  const ms = performance.now() - t0;
  while (bundle.engine.hasWork) await step();
  await telemetry?.shutdown();
  return (batch * steps * 1000) / ms;
}

const levels: TraceDetail[] = ['off', 'summary', 'tokens'];
const best: Record<string, number> = {};
for (let r = 0; r < Number(values.rounds); r++) {
  for (const level of levels) {
    const tps = await round(level, r);
    log(`round ${r} ${level}: ${tps.toFixed(1)} tok/s`);
    best[level] = Math.max(best[level] ?? 0, tps);
  }
}
await bundle.close();
await rm(dir, { recursive: true, force: true });
const off = best['off'] ?? 1;
const overhead = (level: string) => Math.round((1 - (best[level] ?? 0) / off) * 10000) / 100;
process.stdout.write(
  `${JSON.stringify(
    {
      bench: 'telemetry',
      date: new Date().toISOString(),
      model: config.name,
      batch,
      steps,
      tokensPerSecond: Object.fromEntries(levels.map((l) => [l, Math.round((best[l] ?? 0) * 100) / 100])),
      overheadPercent: { summary: overhead('summary'), tokens: overhead('tokens') },
    },
    null,
    2,
  )}\n`,
);
