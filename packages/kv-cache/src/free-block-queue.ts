/**
 * The LRU free queue of a block pool: an intrusive doubly-linked list over block ids, held in two
 * Int32Arrays (prev/next), so push, pop and remove-from-the-middle are O(1) and allocation-free.
 *
 * Invariant (kept by this class): a block id is in the queue at most once; `#inQueue[id]` says whether
 * it is; walking `next` from the head visits exactly `length` ids and ends at the tail. Order is
 * least recently freed first: the head is the next block to (re)use.
 */
const NONE = -1;

export class FreeBlockQueue {
  readonly #prev: Int32Array;
  readonly #next: Int32Array;
  readonly #inQueue: Uint8Array;
  #head = NONE;
  #tail = NONE;
  #length = 0;

  /** A queue over ids [0, capacity) holding all of them in ascending order. */
  constructor(capacity: number) {
    this.#prev = new Int32Array(capacity).fill(NONE);
    this.#next = new Int32Array(capacity).fill(NONE);
    this.#inQueue = new Uint8Array(capacity);
    for (let id = 0; id < capacity; id++) this.pushBack(id);
  }

  get length(): number {
    return this.#length;
  }

  has(id: number): boolean {
    return this.#inQueue[id] === 1;
  }

  /** Removes and returns the head (least recently freed), or undefined when empty. */
  popFront(): number | undefined {
    if (this.#head === NONE) return undefined;
    const id = this.#head;
    this.remove(id);
    return id;
  }

  /** Appends a block at the tail (most recently freed). */
  pushBack(id: number): void {
    if (this.has(id)) throw new Error(`block ${id} is already in the free queue`);
    this.#prev[id] = this.#tail;
    this.#next[id] = NONE;
    if (this.#tail === NONE) this.#head = id;
    else this.#next[this.#tail] = id;
    this.#tail = id;
    this.#inQueue[id] = 1;
    this.#length++;
  }

  /** Unlinks a block from wherever it is in the queue. */
  remove(id: number): void {
    if (!this.has(id)) throw new Error(`block ${id} is not in the free queue`);
    const prev = this.#prev[id] ?? NONE;
    const next = this.#next[id] ?? NONE;
    if (prev === NONE) this.#head = next;
    else this.#next[prev] = next;
    if (next === NONE) this.#tail = prev;
    else this.#prev[next] = prev;
    this.#prev[id] = NONE;
    this.#next[id] = NONE;
    this.#inQueue[id] = 0;
    this.#length--;
  }

  /** Ids from head to tail (O(n); for tests and debugging). */
  toArray(): number[] {
    const ids: number[] = [];
    for (let id = this.#head; id !== NONE; id = this.#next[id] ?? NONE) ids.push(id);
    return ids;
  }
}
