import { hashBlocks, kvNamespace, type BlockHash } from '@switchyard/kv-cache';
import type { Sequence } from './sequence.ts';

export interface PrefixHashConfig {
  readonly modelId: string;
  readonly weightsDigestHex: string;
  readonly kvDtype: string;
  readonly blockSize: number;
}

/**
 * Chained hashes of each sequence's full blocks, extended incrementally as the sequence grows, so a
 * block is hashed once in its life. The namespace includes the tenant salt set by the server.
 */
export class PrefixHasher {
  readonly #config: PrefixHashConfig;
  readonly #namespaces = new Map<string, Uint8Array>();
  readonly #hashes = new Map<string, BlockHash[]>();

  constructor(config: PrefixHashConfig) {
    this.#config = config;
  }

  /** SHA-256 (hex) of the weights these hashes are for. */
  get weightsDigestHex(): string {
    return this.#config.weightsDigestHex;
  }

  /** Tokens per block. */
  get blockSize(): number {
    return this.#config.blockSize;
  }

  /** Hashes of every full block of seq.tokens. */
  hashes(seq: Sequence): readonly BlockHash[] {
    let list = this.#hashes.get(seq.id);
    if (!list) {
      list = [];
      this.#hashes.set(seq.id, list);
    }
    const numFull = Math.floor(seq.tokens.length / this.#config.blockSize);
    if (list.length < numFull) {
      const fresh = hashBlocks(
        this.#namespace(seq.cacheSalt),
        seq.tokens,
        this.#config.blockSize,
        list.length,
        list.at(-1),
      );
      list.push(...fresh);
    }
    return list;
  }

  /**
   * Hex of the KV namespace for `salt` (default: no tenant salt). With salt '' it names what makes two
   * engines' caches interchangeable — model, weights, KV dtype, block size — and labels KV events.
   */
  namespaceHex(salt = ''): string {
    return Buffer.from(this.#namespace(salt)).toString('hex');
  }

  /** Hashes of every full block of `tokens` (a prompt a frontend routes), under `salt`'s namespace. */
  hashTokens(tokens: readonly number[], salt = ''): BlockHash[] {
    return hashBlocks(this.#namespace(salt), tokens, this.#config.blockSize, 0, undefined);
  }

  forget(seqId: string): void {
    this.#hashes.delete(seqId);
  }

  #namespace(salt: string): Uint8Array {
    let ns = this.#namespaces.get(salt);
    if (!ns) {
      const { modelId, weightsDigestHex, kvDtype, blockSize } = this.#config;
      ns = kvNamespace({ modelId, weightsDigestHex, kvDtype, blockSize, salt });
      this.#namespaces.set(salt, ns);
    }
    return ns;
  }
}
