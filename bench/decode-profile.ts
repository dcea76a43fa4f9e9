/**
 * `npm run bench:profile`: where a decode step's time goes. The monolithic engine is assembled over
 * kernels wrapped in timers, and each timed step is split into attention (+ router), routed experts,
 * shared experts, LM head, and the rest (the engine's own JavaScript: embedding, routing, combine,
 * sampling, scheduling, event-loop hops). "experts" is the whole ExpertExecutor.runLayer (the dispatch plan,
 * gathers and the weighted combine included). One JSON document on stdout, a table on stderr.
 *
 *   npm run bench:profile -- --model olmoe-slice --dtypes fp32,int8 --batches 1,8,32 [--intra-op-threads n]
 */
import { parseArgs } from 'node:util';
import { getPreset, isPresetName, PRESET_NAMES, randomWeights, type PresetName } from '@switchyard/model';
import {
  assembleEngine,
  type AttentionKernel,
  type BatchedAttentionKernel,
  type DenseKernels,
  type ExpertExecutor,
  type RowKernel,
} from '@switchyard/engine';
import { createDenseKernels, createLocalExpertExecutor, weightFormatOf, type SessionOptions } from '@switchyard/onnx';
import { measureDecode } from './decode-measure.ts';
import { benchArgs, benchFail, positiveIntArg } from './args.ts';

const USAGE =
  'usage: npm run bench:profile -- [--model olmoe-slice] [--dtypes fp32,int8] [--batches 1,8,32] [--decode-steps 8] ' +
  '[--dense-dtype fp32|int8] [--intra-op-threads n (default: every core)]\n';
const values = benchArgs('bench:profile', USAGE, () =>
  parseArgs({
    options: {
      model: { type: 'string', default: 'olmoe-slice' },
      dtypes: { type: 'string', default: 'fp32,int8' },
      batches: { type: 'string', default: '1,8,32' },
      'decode-steps': { type: 'string', default: '8' },
      'dense-dtype': { type: 'string', default: 'fp32' },
      'intra-op-threads': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }),
);
const log = (msg: string) => process.stderr.write(`[bench:profile] ${msg}\n`);
const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
const NAME = 'bench:profile';
if (!isPresetName(values.model))
  benchFail(NAME, `unknown --model ${JSON.stringify(values.model)} (${PRESET_NAMES.join(', ')})`);
const modelName: PresetName = values.model;
const isDtype = (d: string): d is 'fp32' | 'int8' => d === 'fp32' || d === 'int8';
const rawDenseDtype = values['dense-dtype'];
if (!isDtype(rawDenseDtype))
  benchFail(NAME, `--dense-dtype must be fp32 or int8, got ${JSON.stringify(rawDenseDtype)}`);
const denseDtype: 'fp32' | 'int8' = rawDenseDtype;
const dtypes = list(values.dtypes);
const badDtype = dtypes.find((d) => !isDtype(d));
if (badDtype !== undefined || dtypes.length === 0) {
  benchFail(NAME, `--dtypes must list fp32 and/or int8, got ${JSON.stringify(values.dtypes)}`);
}
const batches = list(values.batches).map((b) => positiveIntArg(NAME, '--batches', b));
if (batches.length === 0) benchFail(NAME, '--batches is empty');
const steps = positiveIntArg(NAME, '--decode-steps', values['decode-steps']);
const session: SessionOptions =
  values['intra-op-threads'] === undefined
    ? {}
    : { intraOpThreads: positiveIntArg(NAME, '--intra-op-threads', values['intra-op-threads']) };

const PARTS = ['attention', 'experts', 'sharedExperts', 'lmHead'] as const;
type Part = (typeof PARTS)[number];

/** Milliseconds spent inside each kind of kernel call since the last reset. */
class Timers {
  readonly ms: Record<Part, number> = { attention: 0, experts: 0, sharedExperts: 0, lmHead: 0 };
  readonly calls: Record<Part, number> = { attention: 0, experts: 0, sharedExperts: 0, lmHead: 0 };

  async time<T>(part: Part, run: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await run();
    } finally {
      this.ms[part] += performance.now() - t0;
      this.calls[part]++;
    }
  }

  reset(): void {
    for (const p of PARTS) this.ms[p] = this.calls[p] = 0;
  }

  snapshot(): { ms: Record<Part, number>; calls: Record<Part, number> } {
    return { ms: { ...this.ms }, calls: { ...this.calls } };
  }
}

function timedDense(dense: DenseKernels, t: Timers): DenseKernels {
  const row = (k: RowKernel, part: Part): RowKernel => ({ run: (x, n) => t.time(part, () => k.run(x, n)) });
  const attention = (k: AttentionKernel): AttentionKernel => ({
    run: (...args) => t.time('attention', () => k.run(...args)),
  });
  const batched = (k: BatchedAttentionKernel): BatchedAttentionKernel => ({
    run: (x, slots) => t.time('attention', () => k.run(x, slots)),
  });
  return {
    ...dense,
    attention: dense.attention.map(attention),
    ...(dense.batchedAttention ? { batchedAttention: dense.batchedAttention.map(batched) } : {}),
    sharedExperts: dense.sharedExperts.map((k) => row(k, 'sharedExperts')),
    lmHead: row(dense.lmHead, 'lmHead'),
    release: () => dense.release(),
  };
}

function timedExperts(experts: ExpertExecutor, t: Timers): ExpertExecutor {
  return {
    runLayer: (layer, hidden, routes, signal) =>
      t.time('experts', () => experts.runLayer(layer, hidden, routes, signal)),
    close: () => experts.close(),
  };
}

const round = (n: number) => Math.round(n * 100) / 100;

async function main(): Promise<void> {
  const config = getPreset(modelName);
  const weights = randomWeights(config, 1);
  const model = { config, weights, weightsDigest: '00'.repeat(32) };
  const rows = [];
  for (const dtype of dtypes.filter(isDtype)) {
    const timers = new Timers();
    const kernelOptions = { session, denseFormat: weightFormatOf(denseDtype) } as const;
    const dense = timedDense(await createDenseKernels(config, weights, kernelOptions), timers);
    const experts = timedExperts(await createLocalExpertExecutor(config, weights, dtype, kernelOptions), timers);
    const options = { blockSize: 16, scheduler: { maxBatchedTokens: 2048, maxRunningSequences: Math.max(...batches) } };
    const bundle = await assembleEngine(model, options, { dense, experts });
    for (const batch of batches) {
      let timed = timers.snapshot();
      const window = { start: () => timers.reset(), stop: () => (timed = timers.snapshot()) };
      const m = await measureDecode(bundle, batch, steps, 'p', window);
      const perStep = Object.fromEntries(PARTS.map((p) => [p, round(timed.ms[p] / steps)])) as Record<Part, number>;
      const inKernels = PARTS.reduce((s, p) => s + timed.ms[p], 0) / steps;
      const row = {
        dtype,
        denseDtype,
        batch,
        tokensPerSecond: round(m.tokensPerSecond),
        msPerStep: round(m.msPerStep),
        ...perStep,
        rest: round(m.msPerStep - inKernels),
        callsPerStep: Object.fromEntries(PARTS.map((p) => [p, timed.calls[p] / steps])),
      };
      log(
        `${dtype} b${batch}: ${row.msPerStep} ms/step (${row.tokensPerSecond} tok/s) = attention ${row.attention} + experts ${row.experts} + shared ${row.sharedExperts} + LM head ${row.lmHead} + rest ${row.rest}`,
      );
      rows.push(row);
    }
    await bundle.close();
  }
  const doc = { bench: 'decode-profile', model: values.model, session, date: new Date().toISOString(), rows };
  process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
}

await main();
