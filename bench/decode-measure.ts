import { resolveSamplingParams, type EngineBundle } from '@switchyard/engine';

export interface DecodeMeasurement {
  readonly batch: number;
  readonly tokensPerSecond: number;
  readonly msPerStep: number;
}

/**
 * What the B sequences of a decode measurement are: `distinct` prompts (each sequence its own, so a
 * step's tokens route to many experts, as a server's do), or one `identical` prompt for all (greedy, so
 * every sequence takes the same experts at every step: what llama.cpp's `llama-batched-bench` measures,
 * whose sequences all feed token 0).
 */
export type DecodePrompts = 'distinct' | 'identical';

/**
 * Decode throughput of an engine at a batch size: B requests with 16-token prompts are prefilled,
 * one warm-up decode step runs, then `steps` decode steps are timed (each samples B tokens).
 */
export async function measureDecode(
  bundle: EngineBundle,
  batch: number,
  steps: number,
  tag = 'd',
  window?: { start(): void; stop(): void },
  prompts: DecodePrompts = 'distinct',
): Promise<DecodeMeasurement> {
  const { engine } = bundle;
  const params = resolveSamplingParams({ maxTokens: steps + 4, temperature: 0, stopAtEos: false });
  for (let i = 0; i < batch; i++) {
    const seed = prompts === 'identical' ? 0 : i;
    const prompt = Array.from({ length: 16 }, (_, t) => (seed * 31 + t * 7) % 256);
    engine.add({ id: `${tag}${batch}-${i}`, promptIds: prompt, params }, () => {});
  }
  await engine.step(); // prefill
  await engine.step(); // warm-up decode
  window?.start();
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) await engine.step();
  const ms = performance.now() - t0;
  window?.stop();
  while (engine.hasWork) await engine.step();
  return { batch, tokensPerSecond: (batch * steps * 1000) / ms, msPerStep: ms / steps };
}
