import { getPreset, randomWeights, tensorNames, type F32Tensor, type ModelConfig } from '@switchyard/model';

/**
 * A tiny model whose routing a test controls: expert `hotExpert` is chosen (at every layer) exactly
 * for positions holding `markerToken`, and never otherwise; the marker is never generated. Given a list
 * of hot experts, none of them is ever chosen but at the marker (which takes the top k of them).
 *
 * How: hidden dimension 0 is non-zero only in the marker's embedding (no attention or expert output
 * writes it, since row 0 of every o_proj and down_proj is zeroed), dimension 1 is a constant 1 in
 * every embedding (likewise never written). The hot expert's router row is c·e₀ − d·e₁, so its logit
 * is ≈ −d everywhere except at the marker; the LM head row of the marker is −d·e₁.
 */
export function routingControlledModel(
  markerToken: number,
  hotExpert: number | readonly number[],
): { config: ModelConfig; weights: Map<string, F32Tensor> } {
  const hot = typeof hotExpert === 'number' ? [hotExpert] : hotExpert;
  const config = getPreset('tiny', { name: 'tiny-routed' });
  const weights = randomWeights(config, 21);
  const H = config.hiddenSize;
  const get = (name: string) => {
    const t = weights.get(name);
    if (!t) throw new Error(`no ${name}`);
    return t.data;
  };
  const embed = get(tensorNames.embedTokens);
  for (let v = 0; v < config.vocabSize; v++) {
    embed[v * H] = v === markerToken ? 30 : 0;
    embed[v * H + 1] = 1;
  }
  for (let layer = 0; layer < config.numLayers; layer++) {
    const o = get(tensorNames.attention(layer, 'o_proj'));
    o.fill(0, 0, o.length / H);
    o.fill(0, o.length / H, (2 * o.length) / H);
    for (let e = 0; e < config.numExperts; e++) {
      const down = get(tensorNames.expert(layer, e, 'down_proj'));
      down.fill(0, 0, 2 * (down.length / H));
    }
    const router = get(tensorNames.router(layer));
    for (const e of hot) {
      router.fill(0, e * H, (e + 1) * H);
      router[e * H] = 10;
      router[e * H + 1] = -20;
    }
  }
  const lm = get(tensorNames.lmHead);
  lm.fill(0, markerToken * H, (markerToken + 1) * H);
  lm[markerToken * H + 1] = -20;
  return { config, weights };
}
