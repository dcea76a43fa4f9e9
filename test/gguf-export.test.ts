/**
 * `npm run bench:gguf`: the GGUF file llama.cpp is measured on. Read back here with a reader of its own
 * (GGUF v3: header, metadata, tensor infos, aligned data): every tensor is where its info says, with
 * llama.cpp's dims (fastest first) and exactly the weights the engine serves; a model llama.cpp's olmoe
 * graph would compute differently is refused by name, and the command keeps its manners.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { getPreset, randomWeights, tensorNames } from '@switchyard/model';
import { checkOlmoeLayout, GGUF_ALIGNMENT, GgufUnsupportedModelError, writeOlmoeGguf } from '../bench/gguf.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface TensorInfo {
  readonly dims: number[];
  readonly type: number;
  readonly offset: number;
}

/** A minimal GGUF v3 reader: metadata values and tensor infos, and where the data section starts. */
function readGguf(bytes: Uint8Array) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const u32 = () => ((at += 4), view.getUint32(at - 4, true));
  const u64 = () => ((at += 8), Number(view.getBigUint64(at - 8, true)));
  const str = () => {
    const n = u64();
    at += n;
    return new TextDecoder().decode(bytes.subarray(at - n, at));
  };
  const value = (type: number): unknown => {
    switch (type) {
      case 4:
        return u32();
      case 5:
        return ((at += 4), view.getInt32(at - 4, true));
      case 6:
        return ((at += 4), view.getFloat32(at - 4, true));
      case 7:
        return ((at += 1), bytes[at - 1] === 1);
      case 8:
        return str();
      case 9: {
        const elementType = u32();
        return Array.from({ length: u64() }, () => value(elementType));
      }
      default:
        throw new Error(`unexpected metadata type ${type}`);
    }
  };
  const magic = new TextDecoder().decode(bytes.subarray(0, 4));
  at = 4;
  const version = u32();
  const tensorCount = u64();
  const metaCount = u64();
  const meta = new Map<string, unknown>();
  for (let i = 0; i < metaCount; i++) {
    const key = str();
    meta.set(key, value(u32()));
  }
  const tensors = new Map<string, TensorInfo>();
  for (let i = 0; i < tensorCount; i++) {
    const name = str();
    const dims = Array.from({ length: u32() }, () => u64());
    tensors.set(name, { dims, type: u32(), offset: u64() });
  }
  const dataStart = Math.ceil(at / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  const data = (name: string): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw new Error(`no tensor ${name}`);
    const count = t.dims.reduce((a, b) => a * b, 1);
    return new Float32Array(bytes.slice(dataStart + t.offset, dataStart + t.offset + count * 4).buffer);
  };
  return { magic, version, meta, tensors, dataStart, data };
}

// `tiny` reshaped into OLMoE's layout (and a vocabulary above the placeholder's 259 fixed tokens).
const config = getPreset('tiny', { qkNorm: 'projection', normTopKProb: false, vocabSize: 300 });
const weights = randomWeights(config, 3);
const dir = await mkdtemp(join(tmpdir(), 'switchyard-gguf-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('the GGUF export for llama.cpp', () => {
  it('puts every tensor where its info says, with llama.cpp dims and the engine’s own weights', async () => {
    const path = join(dir, 'tiny.gguf');
    const progress: number[] = [];
    const written = await writeOlmoeGguf(path, config, weights, (done) => progress.push(done));
    const bytes = new Uint8Array(await readFile(path));
    await expect(readFile(`${path}.part`)).rejects.toThrow(/ENOENT/);
    const gguf = readGguf(bytes);

    expect(gguf.magic).toBe('GGUF');
    expect(gguf.version).toBe(3);
    expect(bytes.length).toBe(written.bytes);
    expect(gguf.tensors.size).toBe(3 + 12 * config.numLayers);
    expect(progress.at(-1)).toBe(gguf.tensors.size);
    expect(gguf.meta.get('general.architecture')).toBe('olmoe');
    expect(gguf.meta.get('olmoe.expert_count')).toBe(config.numExperts);
    expect(gguf.meta.get('olmoe.expert_used_count')).toBe(config.numExpertsPerToken);
    expect(gguf.meta.get('olmoe.feed_forward_length')).toBe(config.expertFfnSize);
    expect(gguf.meta.get('olmoe.attention.head_count_kv')).toBe(config.numKvHeads);
    expect(gguf.meta.get('olmoe.attention.layer_norm_rms_epsilon')).toBeCloseTo(config.rmsNormEps, 10);
    const tokens = gguf.meta.get('tokenizer.ggml.tokens') as string[];
    expect(tokens).toHaveLength(config.vocabSize);
    expect(new Set(tokens).size).toBe(config.vocabSize);
    expect((gguf.meta.get('tokenizer.ggml.token_type') as number[]).slice(0, 4)).toEqual([2, 3, 3, 6]);

    // Every tensor F32, aligned, in order, none overlapping the next; the file ends after the last.
    const infos = [...gguf.tensors.values()];
    expect(gguf.dataStart % GGUF_ALIGNMENT).toBe(0);
    infos.forEach((t, i) => {
      expect(t.type).toBe(0);
      expect(t.offset % GGUF_ALIGNMENT).toBe(0);
      const end = t.offset + t.dims.reduce((a, b) => a * b, 1) * 4;
      expect(end).toBeLessThanOrEqual(infos[i + 1]?.offset ?? bytes.length - gguf.dataStart);
    });

    // llama.cpp's dims are the HF shape reversed; the data is the engine's, byte for byte.
    const h = config.hiddenSize;
    const f = config.expertFfnSize;
    expect(gguf.tensors.get('token_embd.weight')?.dims).toEqual([h, config.vocabSize]);
    expect(gguf.tensors.get('blk.1.attn_k.weight')?.dims).toEqual([h, config.numKvHeads * config.headDim]);
    expect(gguf.tensors.get('blk.0.ffn_gate_inp.weight')?.dims).toEqual([h, config.numExperts]);
    expect(gguf.tensors.get('blk.0.ffn_down_exps.weight')?.dims).toEqual([f, h, config.numExperts]);
    const same = (name: string, hfName: string) =>
      expect(Array.from(gguf.data(name))).toEqual(Array.from(weights.get(hfName)?.data ?? []));
    same('output.weight', tensorNames.lmHead);
    same('blk.1.attn_output.weight', tensorNames.attention(1, 'o_proj'));
    same('blk.1.attn_q_norm.weight', tensorNames.qNorm(1));
    same('blk.0.ffn_norm.weight', tensorNames.postAttentionNorm(0));
    const down = gguf.data('blk.1.ffn_down_exps.weight');
    for (let e = 0; e < config.numExperts; e++) {
      const want = weights.get(tensorNames.expert(1, e, 'down_proj'))?.data ?? new Float32Array(0);
      expect(Array.from(down.subarray(e * h * f, (e + 1) * h * f))).toEqual(Array.from(want));
    }
  });

  it('refuses a model llama.cpp’s olmoe graph would compute differently, naming why', () => {
    expect(() => checkOlmoeLayout(getPreset('tiny'))).toThrow(GgufUnsupportedModelError);
    expect(() => checkOlmoeLayout(getPreset('tiny'))).toThrow(/qkNorm is 'none'.*normTopKProb is set/);
    expect(() => checkOlmoeLayout(getPreset('skewed'))).toThrow(/selection bias/);
    const olmoe = getPreset('olmoe-slice');
    expect(() => checkOlmoeLayout({ ...olmoe, routedScalingFactor: 2.5 })).toThrow(/scaled by 2\.5/);
    expect(() => checkOlmoeLayout({ ...olmoe, headDim: 64 })).toThrow(/query width 1024 is not the hidden size 2048/);
    expect(() => checkOlmoeLayout(getPreset('olmoe-slice'))).not.toThrow();
  });

  it('has --help, and answers a mistake with one line and exit code 2', () => {
    const run = (args: string[]) =>
      spawnSync(process.execPath, ['bench/export-gguf.ts', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: npm run bench:gguf/);
    expect(run(['--model', 'nope'])).toMatchObject({
      status: 2,
      stderr: expect.stringMatching(/^bench:gguf: unknown model 'nope' \(presets: tiny, /),
    });
    const tiny = run(['--model', 'tiny', '--out', join(dir, 'refused.gguf')]);
    expect(tiny.status).toBe(2);
    expect(tiny.stderr).toMatch(/bench:gguf: model 'tiny' does not fit llama\.cpp's olmoe architecture: qkNorm/);
  });
});
