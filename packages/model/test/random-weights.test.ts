import { describe, expect, it } from 'vitest';
import { getPreset } from '../src/presets.ts';
import { ChunkBuffers, randomTensor, randomTensorChunks, randomWeights } from '../src/random-weights.ts';
import { numElements, tensorNames, weightLayout } from '../src/weight-layout.ts';

function std(data: Float32Array, mean = 0): number {
  let s = 0;
  for (const x of data) s += (x - mean) ** 2;
  return Math.sqrt(s / data.length);
}

describe('weightLayout', () => {
  it('lists the tensors of tiny: embedding, 2 layers of attention + 8 experts, final norm, LM head', () => {
    const names = weightLayout(getPreset('tiny')).map((t) => t.name);
    // Per layer: 2 norms + 4 attention + router + 8 × 3 expert matrices.
    expect(names).toHaveLength(1 + 2 * (2 + 4 + 1 + 24) + 2);
    expect(names[0]).toBe('model.embed_tokens.weight');
    expect(names.at(-1)).toBe('lm_head.weight');
    expect(names).toContain('model.layers.1.mlp.experts.7.down_proj.weight');
    expect(names.some((n) => n.includes('bias') || (n.includes('norm.weight') && n.includes('self_attn')))).toBe(false);
  });

  it('adds the optional tensors only when the config asks for them', () => {
    const config = getPreset('tiny', {
      attentionBias: true,
      qkNorm: 'head',
      selectionBias: true,
      sharedExpertFfnSize: 48,
      sharedExpertGate: true,
      tieWordEmbeddings: true,
    });
    const layout = new Map(weightLayout(config).map((t) => [t.name, t.shape]));
    expect(layout.get('model.layers.0.self_attn.q_proj.bias')).toEqual([64]);
    expect(layout.get('model.layers.0.self_attn.k_proj.bias')).toEqual([32]);
    expect(layout.get(tensorNames.qNorm(0))).toEqual([16]);
    expect(layout.get(tensorNames.kNorm(1))).toEqual([16]);
    expect(layout.get(tensorNames.selectionBias(0))).toEqual([8]);
    expect(layout.get(tensorNames.sharedExpert(0, 'gate_proj'))).toEqual([48, 64]);
    expect(layout.get(tensorNames.sharedExpert(0, 'down_proj'))).toEqual([64, 48]);
    expect(layout.get(tensorNames.sharedExpertGate(1))).toEqual([1, 64]);
    expect(layout.has(tensorNames.lmHead)).toBe(false);
    const projection = new Map(weightLayout(getPreset('tiny', { qkNorm: 'projection' })).map((t) => [t.name, t.shape]));
    expect(projection.get(tensorNames.qNorm(0))).toEqual([64]);
    expect(projection.get(tensorNames.kNorm(0))).toEqual([32]);
  });
});

describe('randomWeights', () => {
  it('returns every tensor of the layout with its shape', () => {
    const config = getPreset('tiny', {
      attentionBias: true,
      qkNorm: 'projection',
      sharedExpertFfnSize: 16,
      sharedExpertGate: true,
      selectionBias: true,
    });
    const weights = randomWeights(config, 1);
    const layout = weightLayout(config);
    expect([...weights.keys()]).toEqual(layout.map((t) => t.name));
    for (const t of layout) {
      expect(weights.get(t.name)?.shape).toEqual(t.shape);
      expect(weights.get(t.name)?.data.length).toBe(numElements(t.shape));
    }
  });

  it('is a pure function of (config, seed), tensor by tensor', () => {
    const config = getPreset('tiny');
    const a = randomWeights(config, 5);
    const b = randomWeights(config, 5);
    const c = randomWeights(config, 6);
    const name = tensorNames.expert(1, 3, 'up_proj');
    expect(b.get(name)?.data).toEqual(a.get(name)?.data);
    expect(c.get(name)?.data).not.toEqual(a.get(name)?.data);
    // A tensor does not depend on which other tensors exist: adding biases leaves the expert unchanged.
    const withBias = randomWeights(getPreset('tiny', { attentionBias: true }), 5);
    expect(withBias.get(name)?.data).toEqual(a.get(name)?.data);
  });

  it('scales each role as documented', () => {
    const config = getPreset('small');
    const spec = (name: string) => {
      const s = weightLayout(config).find((t) => t.name === name);
      if (s === undefined) throw new Error(name);
      return randomTensor(s, 1).data;
    };
    const h = config.hiddenSize;
    expect(std(spec(tensorNames.attention(0, 'q_proj')))).toBeCloseTo(1 / Math.sqrt(h), 3);
    expect(std(spec(tensorNames.expert(0, 0, 'down_proj')))).toBeCloseTo(1 / Math.sqrt(config.expertFfnSize), 3);
    expect(std(spec(tensorNames.router(0)))).toBeCloseTo(2 / Math.sqrt(h), 2);
    expect(std(spec(tensorNames.lmHead))).toBeCloseTo(3 / Math.sqrt(h), 2);
    expect(std(spec(tensorNames.embedTokens))).toBeCloseTo(1, 1);
    expect(std(spec(tensorNames.inputNorm(0)), 1)).toBeCloseTo(0.05, 1);
  });

  it('streams the same values in chunks through two reused buffers', () => {
    const spec = weightLayout(getPreset('tiny'))[0];
    if (spec === undefined) throw new Error('empty layout');
    const whole = randomTensor(spec, 9).data;
    const buffers = new ChunkBuffers(1000);
    const collected: number[] = [];
    const seen = new Set<ArrayBufferLike>();
    for (const chunk of randomTensorChunks(spec, 9, buffers)) {
      collected.push(...chunk);
      seen.add(chunk.buffer);
    }
    expect(collected).toEqual(Array.from(whole));
    expect(seen.size).toBe(2);
  });
});
