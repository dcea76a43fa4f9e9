import { readFile } from 'node:fs/promises';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { StreamDecoder, Tokenizer } from './tokenizer.ts';

export class TokenizerLoadError extends Error {
  override readonly name = 'TokenizerLoadError';
  readonly code = 'tokenizer_load' as const;
}

/**
 * The tokenizer an imported model brings (`tokenizer.json`, Hugging Face format), through the pure-JS
 * `@huggingface/tokenizers`. Streaming decode re-decodes the sequence so far and emits what it adds,
 * holding back a trailing U+FFFD (a byte-level token that ends inside a multi-byte character).
 */
export async function loadHfTokenizer(path: string, ids: { bosTokenId: number; eosTokenId: number }): Promise<Tokenizer> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (cause) {
    throw new TokenizerLoadError(`cannot read the tokenizer at ${path}`, { cause });
  }
  let hf: HfTokenizer;
  try {
    hf = new HfTokenizer(json as ConstructorParameters<typeof HfTokenizer>[0], {});
  } catch (cause) {
    throw new TokenizerLoadError(`${path} is not a tokenizer this version understands: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  const decode = (tokens: readonly number[]): string => hf.decode([...tokens], { skip_special_tokens: true });
  return {
    bosTokenId: ids.bosTokenId,
    eosTokenId: ids.eosTokenId,
    encode: (text) => hf.encode(text, { add_special_tokens: false }).ids,
    decode,
    createStreamDecoder(): StreamDecoder {
      const seen: number[] = [];
      let emitted = '';
      const take = (final: boolean): string => {
        let text = decode(seen);
        if (!final) while (text.endsWith('\uFFFD')) text = text.slice(0, -1);
        if (!text.startsWith(emitted)) return '';
        const out = text.slice(emitted.length);
        emitted = text;
        return out;
      };
      return {
        push(id) {
          seen.push(id);
          return take(false);
        },
        flush: () => take(true),
      };
    },
  };
}
