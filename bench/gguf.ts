/**
 * Writes a model's weights as a GGUF file (version 3, all tensors F32) that llama.cpp loads, so a peer can
 * be measured on exactly the weights Switchyard serves (`npm run bench:gguf`). Only the OLMoE layout is
 * mapped (llama.cpp architecture `olmoe`): softmax routing without renormalisation, Q/K norms over the
 * whole projection, no biases, no shared experts. The vocabulary is a placeholder of the model's size
 * (SentencePiece-style: `<unk>`, `<s>`, `</s>`, the 256 byte tokens, then `▁t<n>`): enough for
 * llama.cpp's benchmarks, which feed token ids, not text.
 *
 * Layout (GGUF v3): magic, version, tensor count, metadata count, metadata key/values, tensor infos
 * (name, dims fastest-first, type, offset into the data section), padding to the alignment, tensor data
 * (each tensor aligned). A [rows, cols] weight in the HF layout is dims [cols, rows] here; the experts of
 * a layer are one [E, rows, cols] tensor, dims [cols, rows, E].
 */
import { open, rename, rm } from 'node:fs/promises';
import { tensorNames, type ModelConfig, type WeightMap } from '@switchyard/model';

export const GGUF_ALIGNMENT = 32;
const GGUF_VERSION = 3;
const TYPE_F32 = 0;

/** GGUF metadata value types. */
const GGUF_TYPE = {
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
} as const;

export type MetaValue =
  | { readonly type: 'uint32'; readonly value: number }
  | { readonly type: 'float32'; readonly value: number }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'strings'; readonly value: readonly string[] }
  | { readonly type: 'float32s'; readonly value: readonly number[] }
  | { readonly type: 'int32s'; readonly value: readonly number[] };

/** One GGUF tensor: its name, its shape in the HF (row-major, slowest-first) order, and its parts. */
export interface GgufTensor {
  readonly name: string;
  readonly shape: readonly number[];
  /** Float32 data, concatenated in order (several parts for a stacked tensor). */
  readonly parts: readonly Float32Array[];
}

/** Why a model cannot be written: names what does not fit llama.cpp's `olmoe` architecture. */
export class GgufUnsupportedModelError extends Error {
  override readonly name = 'GgufUnsupportedModelError';
}

class ByteWriter {
  readonly #chunks: Uint8Array[] = [];
  length = 0;

  bytes(b: Uint8Array): void {
    this.#chunks.push(b);
    this.length += b.length;
  }
  /** A little-endian number of `size` bytes, written by `set` at offset 0. */
  #fixed(size: number, set: (view: DataView) => void): void {
    const b = new Uint8Array(size);
    set(new DataView(b.buffer));
    this.bytes(b);
  }
  u32(v: number): void {
    this.#fixed(4, (d) => d.setUint32(0, v, true));
  }
  i32(v: number): void {
    this.#fixed(4, (d) => d.setInt32(0, v, true));
  }
  u64(v: number): void {
    this.#fixed(8, (d) => d.setBigUint64(0, BigInt(v), true));
  }
  f32(v: number): void {
    this.#fixed(4, (d) => d.setFloat32(0, v, true));
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  pad(alignment: number): void {
    const rest = this.length % alignment;
    if (rest !== 0) this.bytes(new Uint8Array(alignment - rest));
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let offset = 0;
    for (const c of this.#chunks) {
      out.set(c, offset);
      offset += c.length;
    }
    return out;
  }
}

function writeMeta(w: ByteWriter, key: string, meta: MetaValue): void {
  w.str(key);
  switch (meta.type) {
    case 'uint32':
      w.u32(GGUF_TYPE.uint32);
      w.u32(meta.value);
      return;
    case 'float32':
      w.u32(GGUF_TYPE.float32);
      w.f32(meta.value);
      return;
    case 'bool':
      w.u32(GGUF_TYPE.bool);
      w.bytes(Uint8Array.of(meta.value ? 1 : 0));
      return;
    case 'string':
      w.u32(GGUF_TYPE.string);
      w.str(meta.value);
      return;
    case 'strings':
      writeArray(w, GGUF_TYPE.string, meta.value, (s) => w.str(s));
      return;
    case 'float32s':
      writeArray(w, GGUF_TYPE.float32, meta.value, (v) => w.f32(v));
      return;
    case 'int32s':
      writeArray(w, GGUF_TYPE.int32, meta.value, (v) => w.i32(v));
  }
}

function writeArray<T>(w: ByteWriter, elementType: number, values: readonly T[], put: (value: T) => void): void {
  w.u32(GGUF_TYPE.array);
  w.u32(elementType);
  w.u64(values.length);
  for (const v of values) put(v);
}

/** Refuses a config llama.cpp's `olmoe` graph would compute differently. */
export function checkOlmoeLayout(config: ModelConfig): void {
  const problems: string[] = [];
  if (config.qkNorm !== 'projection')
    problems.push(`qkNorm is '${config.qkNorm}' (olmoe normalises whole projections)`);
  if (config.scoring !== 'softmax') problems.push(`scoring is '${config.scoring}' (olmoe uses softmax)`);
  if (config.normTopKProb) problems.push('normTopKProb is set (olmoe does not renormalise the top k)');
  if (config.attentionBias) problems.push('attention has biases');
  if (config.sharedExpertFfnSize > 0) problems.push('the model has a shared expert');
  if (config.selectionBias) problems.push('the router has a selection bias');
  if (config.tieWordEmbeddings) problems.push('word embeddings are tied');
  if (config.routedScalingFactor !== 1) problems.push(`routed experts are scaled by ${config.routedScalingFactor}`);
  if (config.numHeads * config.headDim !== config.hiddenSize) {
    problems.push(`query width ${config.numHeads * config.headDim} is not the hidden size ${config.hiddenSize}`);
  }
  if (config.vocabSize < 259)
    problems.push(`vocabulary of ${config.vocabSize} is below the placeholder's 259 fixed tokens`);
  if (problems.length > 0) {
    throw new GgufUnsupportedModelError(
      `model '${config.name}' does not fit llama.cpp's olmoe architecture: ${problems.join('; ')}`,
    );
  }
}

/** The GGUF tensors of an OLMoE-layout model, in the order they are written. */
export function olmoeTensors(config: ModelConfig, weights: WeightMap): GgufTensor[] {
  const get = (name: string): Float32Array => {
    const t = weights.get(name);
    if (!t) throw new Error(`weights have no ${name}`);
    return t.data;
  };
  const h = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const f = config.expertFfnSize;
  const tensors: GgufTensor[] = [
    { name: 'token_embd.weight', shape: [config.vocabSize, h], parts: [get(tensorNames.embedTokens)] },
    { name: 'output_norm.weight', shape: [h], parts: [get(tensorNames.finalNorm)] },
    { name: 'output.weight', shape: [config.vocabSize, h], parts: [get(tensorNames.lmHead)] },
  ];
  for (let i = 0; i < config.numLayers; i++) {
    const experts = (proj: 'gate_proj' | 'up_proj' | 'down_proj') =>
      Array.from({ length: config.numExperts }, (_, e) => get(tensorNames.expert(i, e, proj)));
    tensors.push(
      { name: `blk.${i}.attn_norm.weight`, shape: [h], parts: [get(tensorNames.inputNorm(i))] },
      { name: `blk.${i}.attn_q.weight`, shape: [q, h], parts: [get(tensorNames.attention(i, 'q_proj'))] },
      { name: `blk.${i}.attn_k.weight`, shape: [kv, h], parts: [get(tensorNames.attention(i, 'k_proj'))] },
      { name: `blk.${i}.attn_v.weight`, shape: [kv, h], parts: [get(tensorNames.attention(i, 'v_proj'))] },
      { name: `blk.${i}.attn_output.weight`, shape: [h, q], parts: [get(tensorNames.attention(i, 'o_proj'))] },
      { name: `blk.${i}.attn_q_norm.weight`, shape: [q], parts: [get(tensorNames.qNorm(i))] },
      { name: `blk.${i}.attn_k_norm.weight`, shape: [kv], parts: [get(tensorNames.kNorm(i))] },
      { name: `blk.${i}.ffn_norm.weight`, shape: [h], parts: [get(tensorNames.postAttentionNorm(i))] },
      { name: `blk.${i}.ffn_gate_inp.weight`, shape: [config.numExperts, h], parts: [get(tensorNames.router(i))] },
      { name: `blk.${i}.ffn_gate_exps.weight`, shape: [config.numExperts, f, h], parts: experts('gate_proj') },
      { name: `blk.${i}.ffn_up_exps.weight`, shape: [config.numExperts, f, h], parts: experts('up_proj') },
      { name: `blk.${i}.ffn_down_exps.weight`, shape: [config.numExperts, h, f], parts: experts('down_proj') },
    );
  }
  return tensors;
}

function olmoeMetadata(config: ModelConfig): [string, MetaValue][] {
  const arch = 'olmoe';
  const vocab = config.vocabSize;
  const tokens = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  while (tokens.length < vocab) tokens.push(`\u2581t${tokens.length}`);
  // SentencePiece token types: 1 normal, 2 unknown, 3 control, 6 byte.
  const types = tokens.map((_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1));
  const u32 = (value: number): MetaValue => ({ type: 'uint32', value });
  return [
    ['general.architecture', { type: 'string', value: arch }],
    ['general.name', { type: 'string', value: `${config.name} (Switchyard weights)` }],
    ['general.file_type', u32(0)],
    ['general.alignment', u32(GGUF_ALIGNMENT)],
    [`${arch}.context_length`, u32(config.maxContext)],
    [`${arch}.embedding_length`, u32(config.hiddenSize)],
    [`${arch}.block_count`, u32(config.numLayers)],
    [`${arch}.feed_forward_length`, u32(config.expertFfnSize)],
    [`${arch}.attention.head_count`, u32(config.numHeads)],
    [`${arch}.attention.head_count_kv`, u32(config.numKvHeads)],
    [`${arch}.attention.key_length`, u32(config.headDim)],
    [`${arch}.attention.value_length`, u32(config.headDim)],
    [`${arch}.attention.layer_norm_rms_epsilon`, { type: 'float32', value: config.rmsNormEps }],
    [`${arch}.rope.freq_base`, { type: 'float32', value: config.ropeTheta }],
    [`${arch}.rope.dimension_count`, u32(config.headDim)],
    [`${arch}.expert_count`, u32(config.numExperts)],
    [`${arch}.expert_used_count`, u32(config.numExpertsPerToken)],
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'strings', value: tokens }],
    ['tokenizer.ggml.scores', { type: 'float32s', value: new Array<number>(vocab).fill(0) }],
    ['tokenizer.ggml.token_type', { type: 'int32s', value: types }],
    ['tokenizer.ggml.unknown_token_id', u32(0)],
    ['tokenizer.ggml.bos_token_id', u32(1)],
    ['tokenizer.ggml.eos_token_id', u32(2)],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
  ];
}

/** The header (everything before the tensor data, padded to the alignment) and where each tensor starts. */
export function ggufHeader(
  metadata: readonly [string, MetaValue][],
  tensors: readonly GgufTensor[],
): { header: Uint8Array; offsets: number[] } {
  const w = new ByteWriter();
  w.bytes(new TextEncoder().encode('GGUF'));
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const [key, value] of metadata) writeMeta(w, key, value);
  const offsets: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    const elements = t.shape.reduce((a, b) => a * b, 1);
    const have = t.parts.reduce((n, p) => n + p.length, 0);
    if (have !== elements) throw new Error(`${t.name}: ${have} values for shape [${t.shape.join(', ')}]`);
    w.str(t.name);
    w.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) w.u64(d);
    w.u32(TYPE_F32);
    w.u64(offset);
    offsets.push(offset);
    offset += Math.ceil((elements * 4) / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  }
  w.pad(GGUF_ALIGNMENT);
  return { header: w.concat(), offsets };
}

/**
 * Writes `config`'s weights to `path` as an F32 GGUF for llama.cpp's `olmoe` architecture, tensor by
 * tensor (the file is never whole in memory). Calls `onTensor` after each one.
 */
export async function writeOlmoeGguf(
  path: string,
  config: ModelConfig,
  weights: WeightMap,
  onTensor?: (done: number, total: number) => void,
): Promise<{ bytes: number; tensors: number }> {
  checkOlmoeLayout(config);
  const tensors = olmoeTensors(config, weights);
  const { header, offsets } = ggufHeader(olmoeMetadata(config), tensors);
  // Written under a temporary name and renamed when whole: a failed export leaves no truncated GGUF.
  const partial = `${path}.part`;
  const file = await open(partial, 'w');
  let position = 0;
  try {
    const write = async (bytes: Uint8Array) => {
      let done = 0;
      while (done < bytes.length) {
        const { bytesWritten } = await file.write(bytes, done, bytes.length - done, position + done);
        done += bytesWritten;
      }
      position += bytes.length;
    };
    await write(header);
    for (const [i, t] of tensors.entries()) {
      const start = header.length + (offsets[i] ?? 0);
      if (position < start) await write(new Uint8Array(start - position));
      for (const part of t.parts) await write(new Uint8Array(part.buffer, part.byteOffset, part.byteLength));
      onTensor?.(i + 1, tensors.length);
    }
    const end = Math.ceil(position / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
    if (position < end) await write(new Uint8Array(end - position));
  } catch (error) {
    await file.close();
    await rm(partial, { force: true });
    throw error;
  }
  await file.close();
  await rename(partial, path);
  return { bytes: position, tensors: tensors.length };
}
