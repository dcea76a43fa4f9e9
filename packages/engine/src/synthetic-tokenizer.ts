/**
 * A small byte-level BPE `tokenizer.json` (Hugging Face format): the 256 bytes as ids 0–255, one merge
 * "h e" (id 256), `<|endoftext|>` id 257 — the vocabulary of the byte-tokenizer presets. Tests and
 * benches put it in a model directory to exercise the tokenizer.json path without downloading one.
 */
/** GPT-2's byte → printable character table, which byte-level BPE vocabularies are written in. */
function bytesToUnicode(): string[] {
  const keep = [
    ...Array.from({ length: 94 }, (_, i) => 33 + i),
    ...Array.from({ length: 12 }, (_, i) => 161 + i),
    ...Array.from({ length: 82 }, (_, i) => 174 + i),
  ];
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(keep.includes(b) ? b : 256 + extra++));
}

/** A byte-level BPE tokenizer.json: the 256 bytes (ids 0–255), one merge "h e" (id 256), EOS id 257. */
export function byteLevelBpeTokenizerJson(): string {
  const chars = bytesToUnicode();
  const vocab: Record<string, number> = Object.fromEntries(chars.map((c, i) => [c, i]));
  vocab['he'] = 256;
  return JSON.stringify({
    version: '1.0',
    added_tokens: [
      {
        id: 257,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: ['h e'],
    },
  });
}
