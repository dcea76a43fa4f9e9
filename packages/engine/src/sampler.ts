import type { SamplingParams } from './sampling-params.ts';

/**
 * A request's own random stream (xoshiro128**, seeded through splitmix32). The sampler draws exactly
 * one number per sampled token, so a replay of the request with the same seed samples the same tokens
 * whatever else shares the batch.
 */
export class RequestRng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  constructor(seed: number) {
    let x = (seed >>> 0) ^ (Math.floor(seed / 2 ** 32) * 0x9e3779b9);
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next();
  }

  /** A float in [0, 1). */
  nextFloat(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result / 2 ** 32;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Index of the largest logit; ties go to the lower id so greedy decoding is deterministic. */
export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] ?? -Infinity;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/**
 * Samples one token id from a row of logits. Temperature 0 is greedy and draws nothing from the rng;
 * otherwise the draw happens even when top-k leaves one candidate, so the stream stays aligned.
 */
export function sampleToken(logits: Float32Array, params: SamplingParams, rng: RequestRng): number {
  if (params.temperature === 0) return argmax(logits);
  const u = rng.nextFloat();
  const candidates = candidateIds(logits, params.topK);
  const probs = softmaxOver(logits, candidates, params.temperature);
  const kept = params.topP < 1 ? nucleusSize(probs, params.topP) : candidates.length;
  let total = 0;
  for (let i = 0; i < kept; i++) total += probs[i] ?? 0;
  let acc = 0;
  const target = u * total;
  for (let i = 0; i < kept; i++) {
    acc += probs[i] ?? 0;
    if (target < acc) return candidates[i] ?? 0;
  }
  return candidates[kept - 1] ?? 0;
}

/** Candidate ids sorted by descending logit (ties: lower id first), cut to top-k when k > 0. */
function candidateIds(logits: Float32Array, topK: number): Int32Array {
  const ids = Int32Array.from({ length: logits.length }, (_, i) => i);
  ids.sort((a, b) => (logits[b] ?? 0) - (logits[a] ?? 0) || a - b);
  return topK > 0 && topK < ids.length ? ids.subarray(0, topK) : ids;
}

function softmaxOver(logits: Float32Array, ids: Int32Array, temperature: number): Float64Array {
  const probs = new Float64Array(ids.length);
  const max = logits[ids[0] ?? 0] ?? 0;
  let sum = 0;
  for (let i = 0; i < ids.length; i++) {
    const p = Math.exp(((logits[ids[i] ?? 0] ?? 0) - max) / temperature);
    probs[i] = p;
    sum += p;
  }
  for (let i = 0; i < probs.length; i++) probs[i] = (probs[i] ?? 0) / sum;
  return probs;
}

/** How many of the (descending) candidates form the smallest set whose probability reaches topP. */
function nucleusSize(probs: Float64Array, topP: number): number {
  let acc = 0;
  for (let i = 0; i < probs.length; i++) {
    acc += probs[i] ?? 0;
    if (acc >= topP) return i + 1;
  }
  return probs.length;
}
