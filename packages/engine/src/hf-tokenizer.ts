import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { ChatTurn, StreamDecoder, Tokenizer } from './tokenizer.ts';

export class TokenizerLoadError extends Error {
  override readonly name = 'TokenizerLoadError';
  readonly code = 'tokenizer_load' as const;
}

/**
 * The tokenizer an imported model brings (`tokenizer.json`, Hugging Face format), through the pure-JS
 * `@huggingface/tokenizers`. Streaming decode re-decodes the sequence so far and emits what it adds,
 * holding back a trailing U+FFFD (a byte-level token that ends inside a multi-byte character).
 */
export async function loadHfTokenizer(
  path: string,
  ids: { bosTokenId: number; eosTokenId: number },
): Promise<Tokenizer> {
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
    throw new TokenizerLoadError(
      `${path} is not a tokenizer this version understands: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
  const decode = (tokens: readonly number[]): string => hf.decode([...tokens], { skip_special_tokens: true });
  const chat = await loadChatTemplate(join(dirname(path), 'tokenizer_config.json'));
  return {
    ...(chat ? { applyChatTemplate: chat } : {}),
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

/** Special-token fields of tokenizer_config.json may be strings or `{ content }` objects. */
function tokenText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string')
    return (value as { content: string }).content;
  return '';
}

/**
 * The chat template of `tokenizer_config.json` (Jinja, rendered by @huggingface/jinja with
 * `add_generation_prompt`), or undefined when the file or the template is absent. A template that does
 * not parse fails loading, naming the file.
 */
async function loadChatTemplate(path: string): Promise<((messages: readonly ChatTurn[]) => string) | undefined> {
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const raw = config['chat_template'];
  const source =
    typeof raw === 'string'
      ? raw
      : Array.isArray(raw)
        ? (raw as { name?: string; template?: string }[]).find((t) => t.name === 'default')?.template
        : undefined;
  if (!source) return undefined;
  let template: Template;
  try {
    template = new Template(source);
  } catch (cause) {
    throw new TokenizerLoadError(
      `the chat_template in ${path} does not parse: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
  const specials = { bos_token: tokenText(config['bos_token']), eos_token: tokenText(config['eos_token']) };
  return (messages) =>
    template.render({
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      add_generation_prompt: true,
      ...specials,
    });
}
