/**
 * `npm run bench:engine`: monolithic engine throughput beside its physical bounds, as one JSON document
 * on stdout (progress on stderr). Decode at several batch sizes is compared with the memory-bandwidth
 * bound (weight bytes read per step ÷ measured read bandwidth); prefill with the time its GEMMs would
 * take at the measured peak of their precision (one large fp32 MatMul, one large int8 MatMulInteger).
 *
 *   npm run bench:engine -- --models small,olmoe-slice --dtypes fp32,int8 --batches 1,8,32,64
 */
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import {
  countConfigParams,
  expertSizeBytes,
  getPreset,
  randomWeights,
  type ModelConfig,
  type PresetName,
} from '@switchyard/model';
import { resolveSamplingParams, type EngineBundle } from '@switchyard/engine';
import {
  createEngine,
  measureInt8MatMulOps,
  measureMatMulFlops,
  measureReadBandwidth,
  type PhysicalBound,
} from '@switchyard/onnx';
import { measureDecode, type DecodePrompts } from './decode-measure.ts';
import { benchArgs, benchFail } from './args.ts';

const USAGE =
  'usage: npm run bench:engine -- [--models small,olmoe-slice] [--dtypes fp32,int8] [--batches 1,8,32,64] [--decode-steps 8] [--prefill-tokens 512] [--dense-dtype fp32|int8] [--prompts distinct|identical (identical: every sequence the same prompt, so one token’s experts per step, as llama-batched-bench)] [--intra-op-threads n (default: every core)] [--out file.json]\n';
const values = benchArgs('bench:engine', USAGE, () =>
  parseArgs({
    options: {
      models: { type: 'string', default: 'small,olmoe-slice' },
      dtypes: { type: 'string', default: 'fp32,int8' },
      batches: { type: 'string', default: '1,8,32,64' },
      'decode-steps': { type: 'string', default: '8' },
      'prefill-tokens': { type: 'string', default: '512' },
      'dense-dtype': { type: 'string', default: 'fp32' },
      prompts: { type: 'string', default: 'distinct' },
      'intra-op-threads': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }),
);

const log = (msg: string) => process.stderr.write(`[bench:engine] ${msg}\n`);
const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
const batches = list(values.batches).map(Number);
const decodeSteps = Number(values['decode-steps']);
const prefillTokens = Number(values['prefill-tokens']);
const denseDtype = values['dense-dtype'] === 'int8' ? 'int8' : 'fp32';
const intraOpThreads = values['intra-op-threads'] === undefined ? undefined : Number(values['intra-op-threads']);
if (values.prompts !== 'distinct' && values.prompts !== 'identical') {
  benchFail('bench:engine', `--prompts must be distinct or identical, got ${JSON.stringify(values.prompts)}`);
}
const prompts: DecodePrompts = values.prompts;

/** Distinct (layer, expert) pairs hit per step, from the routing decisions actually made. */
class DistinctExperts {
  readonly #numExperts: number;
  readonly #perStep: number[] = [];
  readonly #hit = new Set<number>();
  #lastLayer = -1;

  constructor(numExperts: number) {
    this.#numExperts = numExperts;
  }

  observe(layer: number, expertIds: Int32Array): void {
    if (layer <= this.#lastLayer) this.#closeStep();
    this.#lastLayer = layer;
    for (const e of expertIds) this.#hit.add(layer * this.#numExperts + e);
  }

  reset(): void {
    this.#perStep.length = 0;
    this.#hit.clear();
    this.#lastLayer = -1;
  }

  snapshot(): number[] {
    this.#closeStep();
    return [...this.#perStep];
  }

  #closeStep(): void {
    if (this.#hit.size > 0) this.#perStep.push(this.#hit.size);
    this.#hit.clear();
    this.#lastLayer = -1;
  }
}

interface DecodeResult {
  batch: number;
  tokensPerSecond: number;
  msPerStep: number;
  /** Distinct (layer, expert) pairs the timed steps ran, per step (mean). */
  distinctExpertsPerStep: number;
  weightBytesPerStep: number;
  boundTokensPerSecond: number;
  fractionOfBound: number;
}

/** Bytes of dense weights read every step (attention, router, norms, shared experts, LM head). */
function denseBytes(config: ModelConfig): number {
  const t = countConfigParams(config).total;
  const matmul = t.attention + t.lmHead + t.sharedExperts;
  return matmul * (denseDtype === 'int8' ? 1 : 4) + (t.router + t.norms) * 4;
}

/**
 * FLOPs per prompt token of a prefill: every matmul except the LM head (which runs on the last row
 * only), plus attention over `context` tokens; `lmHeadShare` adds the one LM-head row spread over the prompt.
 */
function prefillFlopsPerToken(config: ModelConfig, context: number, promptTokens: number): number {
  const counts = countConfigParams(config);
  const lmHead = config.vocabSize * config.hiddenSize;
  const perLayerAttention = 4 * config.numHeads * config.headDim * context;
  return (
    2 * (counts.matmulParamsPerToken - lmHead) + config.numLayers * perLayerAttention + (2 * lmHead) / promptTokens
  );
}

async function decodeAgainstBound(
  bundle: EngineBundle,
  batch: number,
  distinct: DistinctExperts,
  bandwidth: number,
  expertBytes: number,
): Promise<DecodeResult> {
  let timed: number[] = [];
  const m = await measureDecode(
    bundle,
    batch,
    decodeSteps,
    'd',
    { start: () => distinct.reset(), stop: () => (timed = distinct.snapshot()) },
    prompts,
  );
  const meanDistinct = timed.reduce((a, b) => a + b, 0) / Math.max(1, timed.length);
  const weightBytes = denseBytes(bundle.config) + meanDistinct * expertBytes;
  const bound = (batch * bandwidth) / weightBytes;
  return {
    batch,
    tokensPerSecond: round(m.tokensPerSecond),
    msPerStep: round(m.msPerStep),
    distinctExpertsPerStep: round(meanDistinct),
    weightBytesPerStep: Math.round(weightBytes),
    boundTokensPerSecond: round(bound),
    fractionOfBound: round(m.tokensPerSecond / bound, 3),
  };
}

/**
 * A prefill token's ops split by the precision of the kernel they run in: int8 experts (and, with
 * `--dense-dtype int8`, attention projections, shared experts and the LM-head share) run int8 GEMMs.
 */
function prefillOpsPerToken(config: ModelConfig, expertDtype: 'fp32' | 'int8', promptTokens: number) {
  const total = prefillFlopsPerToken(config, promptTokens / 2, promptTokens);
  const a = countConfigParams(config).activePerToken;
  const lmHead = config.vocabSize * config.hiddenSize;
  const experts = expertDtype === 'int8' ? 2 * a.routedExperts : 0;
  const dense = denseDtype === 'int8' ? 2 * (a.attention + a.sharedExperts) + (2 * lmHead) / promptTokens : 0;
  return { fp32: total - experts - dense, int8: experts + dense };
}

/** Tokens/s a prefill could reach if every GEMM ran at its precision's measured peak. */
function prefillBound(ops: { fp32: number; int8: number }, fp32Peak: number, int8Peak: number): number {
  return 1 / (ops.fp32 / fp32Peak + ops.int8 / int8Peak);
}

async function measurePrefill(
  bundle: EngineBundle,
  expertDtype: 'fp32' | 'int8',
  peaks: { fp32: number; int8: number },
) {
  const { engine, config } = bundle;
  const tokens = Math.min(prefillTokens, config.maxContext - 2);
  const params = resolveSamplingParams({ maxTokens: 1, temperature: 0, stopAtEos: false });
  const times: number[] = [];
  for (let r = 0; r < 3; r++) {
    const prompt = Array.from({ length: tokens }, (_, t) => (r * 97 + t * 13) % 256);
    engine.add({ id: `p${r}`, promptIds: prompt, params }, () => {});
    const t0 = performance.now();
    await engine.step();
    times.push(performance.now() - t0);
    while (engine.hasWork) await engine.step();
  }
  const best = Math.min(...times.slice(1));
  const tokensPerSecond = (tokens * 1000) / best;
  const ops = prefillOpsPerToken(config, expertDtype, tokens);
  const bound = prefillBound(ops, peaks.fp32, peaks.int8);
  return {
    promptTokens: tokens,
    tokensPerSecond: round(tokensPerSecond),
    achievedFlops: Math.round(tokensPerSecond * (ops.fp32 + ops.int8)),
    int8ShareOfOps: round(ops.int8 / (ops.fp32 + ops.int8), 3),
    opsPerToken: ops,
    matmulPeakFlops: Math.round(peaks.fp32),
    int8MatmulPeakOps: Math.round(peaks.int8),
    boundTokensPerSecond: round(bound),
    fractionOfPeak: round(tokensPerSecond / bound, 3),
  };
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** A fraction of a bound as a percentage, or the statement that the bound cannot be right. */
function describeFraction(fraction: number, bound: string): string {
  return fraction > 1
    ? `ABOVE the measured ${bound}: the bound is wrong (under-measured), not the figure`
    : `${(100 * fraction).toFixed(0)}% of ${bound}`;
}

interface Bounds {
  readonly bandwidth: PhysicalBound;
  readonly peak: PhysicalBound;
  readonly int8Peak: PhysicalBound;
}

async function measureBounds(label: string): Promise<Bounds> {
  const bandwidth = await measureReadBandwidth();
  const peak = await measureMatMulFlops();
  const int8Peak = await measureInt8MatMulOps();
  log(
    `${label}: read bandwidth ${(bandwidth.value / 1e9).toFixed(2)} GB/s (${bandwidth.method}); MatMul peak ${(peak.value / 1e9).toFixed(1)} GFLOP/s (${peak.method}); int8 MatMul peak ${(int8Peak.value / 1e9).toFixed(1)} GOP/s (${int8Peak.method})`,
  );
  return { bandwidth, peak, int8Peak };
}

async function main(): Promise<void> {
  const start = await measureBounds('bounds at the start');
  const results = [];
  for (const name of list(values.models) as PresetName[]) {
    const config = getPreset(name);
    log(`${name}: generating random weights`);
    const weights = randomWeights(config, 1);
    for (const dtype of list(values.dtypes) as ('fp32' | 'int8')[]) {
      log(`${name} ${dtype}: building sessions`);
      const distinct = new DistinctExperts(config.numExperts);
      const bundle = await createEngine(
        { config, weights, weightsDigest: '00'.repeat(32) },
        {
          expertDtype: dtype,
          denseDtype,
          blockSize: 16,
          // Every decode batch's 16-token prompts fit in one prefill step, so its sequences decode in step
          // (with --prompts identical, they then take the same experts at every step).
          scheduler: {
            maxBatchedTokens: Math.max(prefillTokens, 128, 16 * Math.max(...batches)),
            maxRunningSequences: Math.max(...batches),
          },
          onRouted: (layer, _chunks, routes) => distinct.observe(layer, routes.expertIds),
          ...(intraOpThreads === undefined ? {} : { session: { intraOpThreads } }),
        },
      );
      const expertBytes = expertSizeBytes(config, dtype === 'int8' ? 'int8' : 'f32');
      const decode: DecodeResult[] = [];
      for (const batch of batches) {
        const r = await decodeAgainstBound(bundle, batch, distinct, start.bandwidth.value, expertBytes);
        log(
          `${name} ${dtype} decode batch ${batch}: ${r.tokensPerSecond} tok/s (${describeFraction(r.fractionOfBound, `bound ${r.boundTokensPerSecond}`)}; ${r.distinctExpertsPerStep} experts per step)`,
        );
        decode.push(r);
      }
      const prefill = await measurePrefill(bundle, dtype, { fp32: start.peak.value, int8: start.int8Peak.value });
      log(
        `${name} ${dtype} prefill: ${prefill.tokensPerSecond} tok/s (${describeFraction(prefill.fractionOfPeak, `the MatMul-peak bound ${prefill.boundTokensPerSecond}`)})`,
      );
      results.push({ model: name, expertDtype: dtype, denseDtype, expertBytes, decode, prefill });
      await bundle.close();
    }
  }
  // NOTE: the bounds are measured again at the end and the higher figure is kept: a bound measured
  // while something else ran on the machine would flatter every fraction computed against it.
  const end = await measureBounds('bounds at the end');
  const bestBandwidth = Math.max(start.bandwidth.value, end.bandwidth.value);
  const bestPeak = Math.max(start.peak.value, end.peak.value);
  const bestInt8Peak = Math.max(start.int8Peak.value, end.int8Peak.value);
  const boundsExceeded: string[] = [];
  for (const r of results) {
    for (const d of r.decode) {
      d.boundTokensPerSecond = round((d.batch * bestBandwidth) / d.weightBytesPerStep);
      d.fractionOfBound = round(d.tokensPerSecond / d.boundTokensPerSecond, 3);
      if (d.fractionOfBound > 1) boundsExceeded.push(`${r.model} ${r.expertDtype} decode batch ${d.batch}`);
    }
    r.prefill.matmulPeakFlops = Math.round(bestPeak);
    r.prefill.int8MatmulPeakOps = Math.round(bestInt8Peak);
    r.prefill.boundTokensPerSecond = round(prefillBound(r.prefill.opsPerToken, bestPeak, bestInt8Peak));
    r.prefill.fractionOfPeak = round(r.prefill.tokensPerSecond / r.prefill.boundTokensPerSecond, 3);
    if (r.prefill.fractionOfPeak > 1) boundsExceeded.push(`${r.model} ${r.expertDtype} prefill`);
  }
  log(
    `using the higher of each: ${(bestBandwidth / 1e9).toFixed(2)} GB/s read bandwidth, ${(bestPeak / 1e9).toFixed(1)} GFLOP/s MatMul peak, ${(bestInt8Peak / 1e9).toFixed(1)} GOP/s int8 MatMul peak`,
  );
  for (const r of results) {
    log(
      `${r.model} ${r.expertDtype}: decode ${r.decode.map((d) => `b${d.batch} ${d.tokensPerSecond} tok/s = ${describeFraction(d.fractionOfBound, 'bound')}`).join(', ')}; prefill ${r.prefill.tokensPerSecond} tok/s = ${describeFraction(r.prefill.fractionOfPeak, 'peak')}`,
    );
  }
  if (boundsExceeded.length > 0) {
    log(
      `WARNING: ${boundsExceeded.join('; ')} exceed a measured bound, so that bound is wrong; do not read fractions.`,
    );
  }
  const doc = {
    bench: 'engine',
    date: new Date().toISOString(),
    machine: { cpus: availableParallelism(), node: process.version },
    decodePrompts: prompts,
    bounds: {
      readBandwidthBytesPerSecond: Math.round(bestBandwidth),
      matmulPeakFlops: Math.round(bestPeak),
      int8MatmulPeakOps: Math.round(bestInt8Peak),
      readBandwidthMethod: start.bandwidth.method,
      matmulPeakMethod: start.peak.method,
      int8MatmulPeakMethod: start.int8Peak.method,
      measured: {
        start: {
          bandwidth: Math.round(start.bandwidth.value),
          matmul: Math.round(start.peak.value),
          int8Matmul: Math.round(start.int8Peak.value),
        },
        end: {
          bandwidth: Math.round(end.bandwidth.value),
          matmul: Math.round(end.peak.value),
          int8Matmul: Math.round(end.int8Peak.value),
        },
      },
      exceededBy: boundsExceeded,
    },
    results,
  };
  const json = JSON.stringify(doc, null, 2);
  process.stdout.write(`${json}\n`);
  if (values.out) await writeFile(values.out, json);
}

await main();
