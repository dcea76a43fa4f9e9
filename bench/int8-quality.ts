/**
 * `npm run bench:int8`: what 8-bit experts cost in accuracy and buy in memory and speed, as one JSON
 * document: expert weight bytes fp32 vs int8, greedy-token agreement with fp32 over 16 prompts × 64
 * tokens, mean cosine similarity of the final hidden states (teacher-forced on the fp32 tokens), and
 * decode tokens/s at batch 1 and 32 for both.
 *
 *   npm run bench:int8 -- --models small,olmoe-slice
 */
import { parseArgs } from 'node:util';
import { cosineSimilarity, expertSizeBytes, getPreset, randomWeights, type PresetName } from '@switchyard/model';
import {
  EngineLoop,
  resolveSamplingParams,
  Sequence,
  type EngineBundle,
  type ScheduledChunk,
} from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';
import { measureDecode } from './decode-measure.ts';
import { benchArgs } from './args.ts';

const USAGE =
  'usage: npm run bench:int8 -- [--models small,olmoe-slice] [--prompts 16] [--tokens 64] [--batches 1,32] [--decode-steps 6] [--dense-dtype fp32|int8]\n';
const values = benchArgs('bench:int8', USAGE, () =>
  parseArgs({
    options: {
      models: { type: 'string', default: 'small,olmoe-slice' },
      prompts: { type: 'string', default: '16' },
      tokens: { type: 'string', default: '64' },
      batches: { type: 'string', default: '1,32' },
      'decode-steps': { type: 'string', default: '6' },
      'dense-dtype': { type: 'string', default: 'fp32' },
      help: { type: 'boolean', short: 'h' },
    },
  }),
);
const log = (msg: string) => process.stderr.write(`[bench:int8] ${msg}\n`);
const numPrompts = Number(values.prompts);
const numTokens = Number(values.tokens);
const round = (n: number, d = 4) => Math.round(n * 10 ** d) / 10 ** d;

const PROMPT_TEXTS = [
  'The capital of',
  'Mixture of experts models',
  'def main():',
  'Once upon a time',
  'KV cache pages',
  'SELECT * FROM',
  'gRPC streams carry',
  'In 1905, Einstein',
];
const promptIds = (i: number) => Array.from(new TextEncoder().encode(`${PROMPT_TEXTS[i % PROMPT_TEXTS.length]} #${i}`));

async function generateAll(bundle: EngineBundle): Promise<number[][]> {
  const loop = new EngineLoop(bundle.engine);
  const params = resolveSamplingParams({ maxTokens: numTokens, temperature: 0, stopAtEos: false });
  const runs = await Promise.all(
    Array.from({ length: numPrompts }, (_, i) => loop.generate({ id: `g${i}`, promptIds: promptIds(i), params })),
  );
  await loop.stop();
  return runs.map((events) => events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId));
}

/** Final hidden states of each sequence's tokens, teacher-forced (one prefill over all tokens). */
async function finalHidden(
  bundle: EngineBundle,
  sequences: readonly number[][],
  captured: Map<string, Float32Array>,
): Promise<void> {
  for (const [i, tokens] of sequences.entries()) {
    const seq = new Sequence(`h${i}`, tokens, resolveSamplingParams({ maxTokens: 1 }));
    await bundle.runner.execute({
      chunks: [{ seq, start: 0, count: tokens.length, sample: true }],
      preempted: [],
      numBatchedTokens: tokens.length,
    });
    bundle.runner.release(seq.id);
  }
  if (captured.size !== sequences.length) throw new Error('hidden states not captured');
}

async function benchModel(preset: PresetName) {
  const config = getPreset(preset);
  log(`${preset}: generating random weights`);
  const weights = randomWeights(config, 1);
  const model = { config, weights, weightsDigest: '00'.repeat(32) };
  const byDtype: Record<
    string,
    { tokens: number[][]; hidden: Map<string, Float32Array>; decode: Record<number, number> }
  > = {};
  for (const dtype of ['fp32', 'int8'] as const) {
    const hidden = new Map<string, Float32Array>();
    const capture = (chunks: readonly ScheduledChunk[], x: Float32Array) => {
      if (chunks.length === 1 && chunks[0]?.seq.id.startsWith('h')) hidden.set(chunks[0].seq.id, x.slice());
    };
    log(`${preset} ${dtype}: building sessions`);
    // The int8 arm quantises the experts, and with --dense-dtype int8 attention and the LM head too.
    const denseDtype = dtype === 'int8' && values['dense-dtype'] === 'int8' ? 'int8' : 'fp32';
    const bundle = await createEngine(model, {
      expertDtype: dtype,
      denseDtype,
      blockSize: 16,
      scheduler: { maxBatchedTokens: 4096, maxRunningSequences: 64 },
      onFinalHidden: capture,
    });
    const tokens = await generateAll(bundle);
    const decode: Record<number, number> = {};
    for (const b of values.batches.split(',').map(Number))
      decode[b] = (await measureDecode(bundle, b, Number(values['decode-steps']), `d${dtype}`)).tokensPerSecond;
    byDtype[dtype] = { tokens, hidden, decode };
    // Teacher-force both models on the fp32 continuations.
    const reference = byDtype['fp32']?.tokens ?? tokens;
    await finalHidden(
      bundle,
      reference.map((out, i) => [...promptIds(i), ...out]),
      hidden,
    );
    await bundle.close();
  }
  const fp = byDtype['fp32'];
  const q = byDtype['int8'];
  if (!fp || !q) throw new Error('missing runs');
  let same = 0;
  let total = 0;
  let prefix = 0;
  fp.tokens.forEach((a, i) => {
    const b = q.tokens[i] ?? [];
    a.forEach((t, j) => {
      total++;
      if (b[j] === t) same++;
    });
    const firstDiff = a.findIndex((t, j) => b[j] !== t);
    prefix += firstDiff < 0 ? a.length : firstDiff;
  });
  const cosines = [...fp.hidden.keys()].map((id) => {
    const a = fp.hidden.get(id) ?? new Float32Array();
    const b = q.hidden.get(id) ?? new Float32Array();
    const H = config.hiddenSize;
    let sum = 0;
    const rows = a.length / H;
    for (let r = 0; r < rows; r++)
      sum += cosineSimilarity(a.subarray(r * H, (r + 1) * H), b.subarray(r * H, (r + 1) * H));
    return sum / rows;
  });
  const expertCount = config.numLayers * config.numExperts;
  return {
    model: preset,
    int8DenseDtype: values['dense-dtype'],
    expertWeightBytes: {
      fp32: expertCount * expertSizeBytes(config, 'f32'),
      int8: expertCount * expertSizeBytes(config, 'int8'),
    },
    greedyTokenAgreement: round(same / total),
    meanTokensBeforeFirstDivergence: round(prefix / fp.tokens.length, 2),
    meanCosineFinalHidden: round(cosines.reduce((a, b) => a + b, 0) / cosines.length, 6),
    decodeTokensPerSecond: { fp32: fp.decode, int8: q.decode },
    int8SpeedupByBatch: Object.fromEntries(
      Object.keys(fp.decode).map((b) => [b, round((q.decode[Number(b)] ?? 0) / (fp.decode[Number(b)] ?? 1), 3)]),
    ),
  };
}

const results = [];
for (const preset of values.models.split(',') as PresetName[]) {
  const r = await benchModel(preset);
  log(JSON.stringify(r));
  results.push(r);
}
process.stdout.write(
  `${JSON.stringify({ bench: 'int8', date: new Date().toISOString(), prompts: numPrompts, tokensPerPrompt: numTokens, results }, null, 2)}\n`,
);
