/**
 * The oracle in a process of its own (test/helpers/oracle.ts): reads `{ modelDir, prompts, maxTokens }`
 * as JSON on stdin (a prompt is a text or its token ids), runs the monolithic engine greedily and writes each prompt's events as JSON on stdout.
 * Run apart from the test so that a big model's weights leave memory when the answers are known.
 */
import { text } from 'node:stream/consumers';
import { loadModelDir } from '@switchyard/model';
import { createByteTokenizer, EngineLoop, resolveSamplingParams } from '@switchyard/engine';
import { createEngine } from '@switchyard/onnx';

const input = JSON.parse(await text(process.stdin)) as {
  modelDir: string;
  prompts: (string | number[])[];
  maxTokens: number;
};
const tokenizer = createByteTokenizer();
const bundle = await createEngine(await loadModelDir(input.modelDir), {
  expertDtype: 'fp32',
  denseDtype: 'fp32',
  blockSize: 16,
  scheduler: { maxBatchedTokens: 2048, maxRunningSequences: 64 },
});
const loop = new EngineLoop(bundle.engine);
try {
  const params = resolveSamplingParams({ maxTokens: input.maxTokens, temperature: 0, stopAtEos: false });
  const events = await Promise.all(
    input.prompts.map((p, i) =>
      loop.generate({ id: `oracle-${i}`, promptIds: typeof p === 'string' ? tokenizer.encode(p) : p, params }),
    ),
  );
  const failed = events.flat().find((e) => e.error !== undefined);
  if (failed?.error) throw failed.error;
  process.stdout.write(JSON.stringify(events));
} finally {
  await loop.stop();
  await bundle.close();
}
