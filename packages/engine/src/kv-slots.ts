/**
 * The working K/V of running sequences: per sequence and layer, one contiguous token-major buffer
 * [capacity, numKvHeads, headDim] for K and one for V, which the attention graph reads in place as a
 * prefix view — no per-step gather of pages (docs/architecture.md §6's trap). Capacity doubles as a sequence grows
 * (amortised O(1) per token) up to the model's context.
 *
 * Invariant: tokens [0, filled) of a slot hold valid K/V; the model runner appends at `filled`.
 */
export interface SlotLayer {
  k: Float32Array;
  v: Float32Array;
}

export interface Slot {
  readonly layers: SlotLayer[];
  capacityTokens: number;
  filled: number;
}

export class KvSlots {
  readonly #numLayers: number;
  readonly #tokenWidth: number;
  readonly #maxTokens: number;
  readonly #slots = new Map<string, Slot>();

  /** tokenWidth = numKvHeads × headDim. */
  constructor(numLayers: number, tokenWidth: number, maxTokens: number) {
    this.#numLayers = numLayers;
    this.#tokenWidth = tokenWidth;
    this.#maxTokens = maxTokens;
  }

  get tokenWidth(): number {
    return this.#tokenWidth;
  }

  /** The slot of seqId, created or grown so it can hold `numTokens` tokens. */
  reserve(seqId: string, numTokens: number): Slot {
    let slot = this.#slots.get(seqId);
    if (!slot) {
      const capacity = Math.min(this.#maxTokens, Math.max(16, nextPow2(numTokens)));
      slot = { layers: this.#allocLayers(capacity), capacityTokens: capacity, filled: 0 };
      this.#slots.set(seqId, slot);
    } else if (numTokens > slot.capacityTokens) {
      this.#grow(slot, Math.min(this.#maxTokens, nextPow2(numTokens)));
    }
    return slot;
  }

  get(seqId: string): Slot | undefined {
    return this.#slots.get(seqId);
  }

  release(seqId: string): void {
    this.#slots.delete(seqId);
  }

  get numSlots(): number {
    return this.#slots.size;
  }

  #grow(slot: Slot, capacity: number): void {
    const fresh = this.#allocLayers(capacity);
    const used = slot.filled * this.#tokenWidth;
    for (let l = 0; l < this.#numLayers; l++) {
      const from = slot.layers[l];
      const to = fresh[l];
      if (!from || !to) continue;
      to.k.set(from.k.subarray(0, used));
      to.v.set(from.v.subarray(0, used));
      slot.layers[l] = to;
    }
    slot.capacityTokens = capacity;
  }

  #allocLayers(capacity: number): SlotLayer[] {
    const size = capacity * this.#tokenWidth;
    return Array.from({ length: this.#numLayers }, () => ({ k: new Float32Array(size), v: new Float32Array(size) }));
  }
}

function nextPow2(n: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, n)));
}
