/**
 * Long prompts are tokenized on a thread of their own (issue 12 item 4): the same ids as in place, the
 * event loop keeps turning while a long text is encoded, short texts stay in place, and a thread that
 * cannot load its tokenizer fails the request instead of hanging it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { byteLevelBpeTokenizerJson, createByteTokenizer, loadHfTokenizer, type Tokenizer } from '@switchyard/engine';
import { OffThreadTokenizer, TooManyTokensError } from '../src/tokenize/off-thread-tokenizer.ts';

const IDS = { bosTokenId: 256, eosTokenId: 257 };
let root = '';
let path = '';
let hf: Tokenizer;
const open: OffThreadTokenizer[] = [];
const make = (inline: Tokenizer, tokenizerPath?: string) => {
  const t = new OffThreadTokenizer(
    inline,
    { ...IDS, ...(tokenizerPath ? { tokenizerPath } : {}) },
    { inlineMaxChars: 64 },
  );
  open.push(t);
  return t;
};

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'switchyard-offtok-'));
  path = join(root, 'tokenizer.json');
  await writeFile(path, byteLevelBpeTokenizerJson());
  hf = await loadHfTokenizer(path, IDS);
});

afterAll(async () => {
  for (const t of open) await t.close();
  await rm(root, { recursive: true, force: true });
});

const longText = (n: number) => Array.from({ length: n }, (_, i) => `hello there ${i} héllo ✓ `).join('');

describe('OffThreadTokenizer', () => {
  it('gives the same ids as the tokenizer in place, for the byte tokenizer and a tokenizer.json', async () => {
    const text = longText(2_000);
    const bytes = make(createByteTokenizer());
    expect(await bytes.encode(text)).toEqual(createByteTokenizer().encode(text));
    const json = make(hf, path);
    expect(await json.encode(text)).toEqual(hf.encode(text));
    expect(bytes.numOffThread).toBe(1);
    expect(json.numOffThread).toBe(1);
  });

  it('refuses a text with more tokens than allowed, on the thread and in place, naming the count', async () => {
    const t = make(hf, path);
    const text = longText(500);
    const count = hf.encode(text).length;
    await expect(t.encode(text, count - 1)).rejects.toEqual(new TooManyTokensError(count, count - 1));
    await expect(t.encode(text, count)).resolves.toHaveLength(count);
    await expect(t.encode('hello there', 2)).rejects.toBeInstanceOf(TooManyTokensError);
  });

  it('keeps short texts in place', async () => {
    const t = make(hf, path);
    expect(await t.encode('hello')).toEqual(hf.encode('hello'));
    expect(t.numOffThread).toBe(0);
  });

  it('leaves the event loop free while a long text is encoded', async () => {
    const t = make(hf, path);
    await t.encode(longText(100)); // the thread is up and its tokenizer loaded
    const text = longText(40_000);
    let turns = 0;
    const timer = setInterval(() => turns++, 0);
    try {
      const ids = await t.encode(text);
      expect(ids.length).toBeGreaterThan(text.length / 4);
    } finally {
      clearInterval(timer);
    }
    // In place, the encode would be one synchronous call: not a single timer turn in between.
    expect(turns).toBeGreaterThan(0);
  });

  it('fails a text, not the process, when the thread cannot load its tokenizer; runs jobs in order', async () => {
    const broken = make(hf, join(root, 'missing.json'));
    await expect(broken.encode(longText(100))).rejects.toThrow(/tokenizer thread|tokenizing failed|cannot read/);
    const t = make(createByteTokenizer());
    const texts = [longText(10), longText(20), longText(30)];
    const all = await Promise.all(texts.map((x) => t.encode(x)));
    expect(all).toEqual(texts.map((x) => createByteTokenizer().encode(x)));
  });
});
