/**
 * `npm run bench:gguf`: writes a preset's weights (the same seeded random weights `bench:engine` serves)
 * as an F32 GGUF file for llama.cpp, so a peer is measured on exactly the same weights and routing.
 * Quantise it with llama.cpp's own `llama-quantize … Q8_0` for the int8 comparison.
 *
 *   npm run bench:gguf -- [--model olmoe-slice] [--seed 1] [--out bench/out/olmoe-slice-f32.gguf]
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { getPreset, isPresetName, PRESET_NAMES, randomWeights } from '@switchyard/model';
import { GgufUnsupportedModelError, writeOlmoeGguf } from './gguf.ts';
import { benchArgs, benchFail } from './args.ts';

const USAGE = `usage: npm run bench:gguf -- [--model olmoe-slice] [--seed 1] [--out file.gguf]

Writes the preset's seeded random weights (bench:engine uses seed 1) as a GGUF file (version 3, F32) for
llama.cpp's olmoe architecture, with a placeholder vocabulary of the model's size. Then, for example:
  llama-bench -m FILE -t 2 -p 512 -n 128
  llama-batched-bench -m FILE -t 2 -c 16384 -npp 128 -ntg 128 -npl 8,32,64
  llama-quantize FILE FILE-q8_0.gguf Q8_0
`;

const fail: (message: string) => never = (message) => benchFail('bench:gguf', message);

const values = benchArgs('bench:gguf', USAGE, () =>
  parseArgs({
    options: {
      model: { type: 'string', default: 'olmoe-slice' },
      seed: { type: 'string', default: '1' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }),
);
if (!isPresetName(values.model)) fail(`unknown model '${values.model}' (presets: ${PRESET_NAMES.join(', ')})`);
const seed = Number(values.seed);
if (!Number.isInteger(seed) || seed < 0) fail(`--seed must be a non-negative integer, got '${values.seed}'`);
const out = values.out ?? `bench/out/${values.model}-f32.gguf`;

const config = getPreset(values.model);
process.stderr.write(`bench:gguf: generating ${values.model}'s weights (seed ${seed})\n`);
const weights = randomWeights(config, seed);
await mkdir(dirname(out), { recursive: true });
try {
  let last = 0;
  const written = await writeOlmoeGguf(out, config, weights, (done, total) => {
    const now = Date.now();
    if (now - last > 1000 || done === total) {
      last = now;
      process.stderr.write(`bench:gguf: ${done}/${total} tensors\n`);
    }
  });
  process.stdout.write(
    `${JSON.stringify({ bench: 'gguf', model: values.model, seed, out, bytes: written.bytes, tensors: written.tensors })}\n`,
  );
} catch (error) {
  if (error instanceof GgufUnsupportedModelError) fail(error.message);
  throw error;
}
