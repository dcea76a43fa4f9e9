import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getPreset, importHfCheckpoint, loadModelDir, randomWeights, writeHfCheckpoint } from '@switchyard/model';
import { createEngine } from '../src/create-engine.ts';
import {
  byteLevelBpeTokenizerJson,
  EngineLoop,
  loadHfTokenizer,
  TokenizerLoadError,
  resolveSamplingParams,
} from '@switchyard/engine';

const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const root = await mkdtemp(join(tmpdir(), 'switchyard-tok-'));
afterAll(() => rm(root, { recursive: true, force: true }));

describe('tokenizer.json of imported models', () => {
  it('encodes with the merges, decodes back, and streams a multi-byte character whole', async () => {
    const path = join(root, 'tokenizer.json');
    await writeFile(path, byteLevelBpeTokenizerJson());
    const tok = await loadHfTokenizer(path, { bosTokenId: 257, eosTokenId: 257 });
    const ids = tok.encode('hello é');
    expect(ids.slice(0, 4)).toEqual([256, 108, 108, 111]);
    expect(tok.decode(ids)).toBe('hello é');
    const stream = tok.createStreamDecoder();
    const pieces = ids.map((id) => stream.push(id));
    expect(pieces.join('') + stream.flush()).toBe('hello é');
    expect(pieces.at(-2)).toBe('');
    expect(pieces.at(-1)).toBe('é');
  });

  it('renders the model’s own chat template from tokenizer_config.json', async () => {
    const dir = join(root, 'chat');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'tokenizer.json'), byteLevelBpeTokenizerJson());
    await writeFile(
      join(dir, 'tokenizer_config.json'),
      JSON.stringify({ eos_token: '<|endoftext|>', chat_template: CHATML }),
    );
    const tok = await loadHfTokenizer(join(dir, 'tokenizer.json'), { bosTokenId: 257, eosTokenId: 257 });
    expect(
      tok.applyChatTemplate?.([
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'hi' },
      ]),
    ).toBe('<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
  });

  it('rejects a file that is not a tokenizer, naming it', async () => {
    const path = join(root, 'bad.json');
    await writeFile(path, '{"model": 3}');
    await expect(loadHfTokenizer(path, { bosTokenId: 0, eosTokenId: 0 })).rejects.toBeInstanceOf(TokenizerLoadError);
  });

  it('serves an imported checkpoint through its own tokenizer', async () => {
    const config = getPreset('tiny', { family: 'qwen3_moe', qkNorm: 'head', name: 'tiny-tok' });
    const hfDir = join(root, 'hf');
    await writeHfCheckpoint(hfDir, 'qwen3_moe', config, randomWeights(config, 2), {
      tokenizerJson: byteLevelBpeTokenizerJson(),
    });
    await writeFile(join(hfDir, 'tokenizer_config.json'), JSON.stringify({ chat_template: CHATML }));
    await importHfCheckpoint(hfDir, join(root, 'model'));
    const model = await loadModelDir(join(root, 'model'));
    expect(model.tokenizerPath).toBeDefined();
    const bundle = await createEngine(model, {
      expertDtype: 'fp32',
      denseDtype: 'fp32',
      blockSize: 4,
      scheduler: { maxBatchedTokens: 64, maxRunningSequences: 2 },
    });
    const loop = new EngineLoop(bundle.engine);
    try {
      expect(bundle.tokenizer.encode('he')).toEqual([256]);
      expect(bundle.tokenizer.applyChatTemplate?.([{ role: 'user', content: 'x' }])).toBe(
        '<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n',
      );
      const events = await loop.generate({
        id: 't',
        promptIds: bundle.tokenizer.encode('hello'),
        params: resolveSamplingParams({ maxTokens: 6, temperature: 0, stopAtEos: false }),
      });
      const outputIds = events.filter((e) => e.tokenId >= 0).map((e) => e.tokenId);
      expect(outputIds).toHaveLength(6);
      expect(events.map((e) => e.text).join('')).toBe(bundle.tokenizer.decode(outputIds));
    } finally {
      await loop.stop();
      await bundle.close();
    }
  });
});
