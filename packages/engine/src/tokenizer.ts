/**
 * The byte-level tokenizer that serves models with random weights: ids 0..255 are bytes, 256 is BOS,
 * 257 is EOS. Ids past the byte range (a preset with a larger vocabulary, such as `olmoe-slice`) decode
 * to a placeholder so any sampled id prints something.
 */
export interface Tokenizer {
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  encode(text: string): number[];
  /** Decodes a whole sequence of ids. */
  decode(ids: readonly number[]): string;
  /** A stateful decoder for streaming: multi-byte characters are emitted once complete. */
  createStreamDecoder(): StreamDecoder;
  /** The model's own chat template (imported models), rendered with a generation prompt; absent = none. */
  readonly applyChatTemplate?: (messages: readonly ChatTurn[]) => string;
  /**
   * The most UTF-16 code units one token can stand for, when known: a text of n code units has at least
   * n ÷ this many tokens, so a text too long for a context can be refused without tokenizing it.
   */
  readonly maxCharsPerToken?: number;
  /**
   * The bytes a token stands for, when the tokenizer knows them exactly (a byte-level token may be part
   * of a multi-byte character, so its decoded text cannot say); absent: the UTF-8 of its decoded text.
   */
  readonly tokenBytes?: (id: number) => readonly number[];
}

export interface ChatTurn {
  readonly role: string;
  readonly content: string;
}

export interface StreamDecoder {
  /** Text that became complete with this token ('' while a multi-byte character is pending). */
  push(id: number): string;
  /** What is left at the end (an incomplete character becomes U+FFFD). */
  flush(): string;
}

export const BYTE_VOCAB_SIZE = 258;
const BOS = 256;
const EOS = 257;
const PLACEHOLDER = '\uFFFD';

export function createByteTokenizer(): Tokenizer {
  const encoder = new TextEncoder();
  return {
    bosTokenId: BOS,
    eosTokenId: EOS,
    // One token per UTF-8 byte, and every UTF-16 code unit is at least one byte.
    maxCharsPerToken: 1,
    encode: (text) => Array.from(encoder.encode(text)),
    tokenBytes: (id) => (id >= 0 && id < 256 ? [id] : id === BOS || id === EOS ? [] : [0xef, 0xbf, 0xbd]),
    decode(ids) {
      const decoder = createByteStreamDecoder();
      return ids.map((id) => decoder.push(id)).join('') + decoder.flush();
    },
    createStreamDecoder: createByteStreamDecoder,
  };
}

function createByteStreamDecoder(): StreamDecoder {
  const decoder = new TextDecoder('utf-8', { fatal: false });
  const one = new Uint8Array(1);
  return {
    push(id) {
      if (id >= 0 && id < 256) {
        one[0] = id;
        return decoder.decode(one, { stream: true });
      }
      // Special ids end any pending character first.
      const pending = decoder.decode();
      if (id === BOS || id === EOS) return pending;
      return pending + PLACEHOLDER;
    },
    flush: () => decoder.decode(),
  };
}
