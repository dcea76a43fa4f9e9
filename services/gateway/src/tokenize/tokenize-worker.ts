/**
 * The tokenizer thread: loads the model's tokenizer once, then encodes the texts it is sent and hands the
 * ids back as a transferred Int32Array (no copy). Started by `OffThreadTokenizer`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createByteTokenizer, loadHfTokenizer, type Tokenizer } from '@switchyard/engine';
import type { TokenizerSpec } from './off-thread-tokenizer.ts';

const spec = workerData as TokenizerSpec;
const tokenizer: Tokenizer =
  spec.tokenizerPath === undefined ? createByteTokenizer() : await loadHfTokenizer(spec.tokenizerPath, spec);

parentPort?.on('message', (job: { id: number; text: string; maxTokens: number }) => {
  try {
    const encoded = tokenizer.encode(job.text);
    // Too many for the context: only the count goes back (the request is refused without its ids).
    if (encoded.length > job.maxTokens) {
      parentPort?.postMessage({ id: job.id, numTokens: encoded.length });
      return;
    }
    const ids = Int32Array.from(encoded);
    parentPort?.postMessage({ id: job.id, ids }, [ids.buffer]);
  } catch (error) {
    parentPort?.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) });
  }
});
parentPort?.postMessage({ ready: true });
