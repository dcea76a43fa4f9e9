/**
 * K/V pages of full blocks, kept by block id so a later sequence with the same prefix starts from them
 * and so pages can move between nodes. One page holds a block's K and V for every layer, laid out
 * [layer][k|v][blockSize × tokenWidth] — one contiguous extent across all layers.
 *
 * Invariant: a page is written exactly when its block's hash is registered in the block pool, so a
 * block id found by prefix lookup always has this block's data here. Storage for a block id is
 * allocated on first use and reused when the pool hands that id out again.
 */
export class PageStore {
  readonly #numLayers: number;
  readonly #blockSize: number;
  readonly #tokenWidth: number;
  readonly #pages = new Map<number, Float32Array>();

  constructor(numLayers: number, blockSize: number, tokenWidth: number) {
    this.#numLayers = numLayers;
    this.#blockSize = blockSize;
    this.#tokenWidth = tokenWidth;
  }

  get pageFloats(): number {
    return this.#numLayers * 2 * this.#blockSize * this.#tokenWidth;
  }

  /** Copies block `blockIndex` of a sequence's K/V (token-major per layer) into page `blockId`. */
  write(blockId: number, blockIndex: number, layers: readonly { k: Float32Array; v: Float32Array }[]): void {
    let page = this.#pages.get(blockId);
    if (!page) {
      page = new Float32Array(this.pageFloats);
      this.#pages.set(blockId, page);
    }
    const span = this.#blockSize * this.#tokenWidth;
    const from = blockIndex * span;
    for (let l = 0; l < this.#numLayers; l++) {
      const layer = layers[l];
      if (!layer) continue;
      page.set(layer.k.subarray(from, from + span), 2 * l * span);
      page.set(layer.v.subarray(from, from + span), (2 * l + 1) * span);
    }
  }

  /** Copies page `blockId` into block `blockIndex` of a sequence's K/V. False when no page is held. */
  read(blockId: number, blockIndex: number, layers: readonly { k: Float32Array; v: Float32Array }[]): boolean {
    const page = this.#pages.get(blockId);
    if (!page) return false;
    const span = this.#blockSize * this.#tokenWidth;
    const to = blockIndex * span;
    for (let l = 0; l < this.#numLayers; l++) {
      const layer = layers[l];
      if (!layer) continue;
      layer.k.set(page.subarray(2 * l * span, (2 * l + 1) * span), to);
      layer.v.set(page.subarray((2 * l + 1) * span, (2 * l + 2) * span), to);
    }
    return true;
  }

  /** The raw page (for transfer between nodes). */
  page(blockId: number): Float32Array | undefined {
    return this.#pages.get(blockId);
  }

  /** Stores a whole page received from another node as page `blockId` (copied; length must be pageFloats). */
  writePage(blockId: number, data: Float32Array): void {
    if (data.length !== this.pageFloats)
      throw new RangeError(`a page holds ${this.pageFloats} floats, got ${data.length}`);
    let page = this.#pages.get(blockId);
    if (!page) {
      page = new Float32Array(this.pageFloats);
      this.#pages.set(blockId, page);
    }
    page.set(data);
  }

  /**
   * Hands over page `blockId`'s storage and forgets it, so its data survives the block's reuse (the next
   * write allocates fresh storage). For offloading an evicted block without copying it.
   */
  detach(blockId: number): Float32Array | undefined {
    const page = this.#pages.get(blockId);
    this.#pages.delete(blockId);
    return page;
  }
}
