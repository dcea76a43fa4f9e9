/**
 * The seed of choice `choice` of a prompt whose request seed is `seed`. Choice 0 keeps the request's
 * seed, so `n: 1` and the first of `n: 4` are the same answer; the others take a hash of (seed, choice),
 * so they differ from each other and from any nearby seed a client might send next (vLLM's `seed + i`
 * would make choice 1 of seed 7 the answer to seed 8). Deterministic: the same request gives the same
 * choices. The result is below 2³¹, like the seeds the server picks itself.
 */
export function choiceSeed(seed: number, choice: number): number {
  if (choice === 0) return seed;
  // FNV-1a over the decimal text (any integer JSON can carry), then murmur3's finaliser.
  let h = 0x811c9dc5;
  for (const c of `${seed}/${choice}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 1;
}
