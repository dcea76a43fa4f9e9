/**
 * The LM head: input `x` float32 [S, H] (the residual stream after the last layer) → output `logits`
 * float32 [S, V] = RMSNorm_final(x) · W_lmᵀ, where W_lm is the embedding when `tieWordEmbeddings`.
 */
import type { F32Tensor, ModelConfig, WeightMap } from '@switchyard/model';
import { tensorNames } from '@switchyard/model';
import { GraphBuilder } from './graph-builder.ts';
import { linear, rmsNorm, type WeightFormat } from './layers.ts';
import { requireWeight } from '@switchyard/model';

export interface LmHeadGraphOptions {
  /** Default fp32. */
  readonly format?: WeightFormat;
}

/** The [V, H] matrix the LM head multiplies by (the embedding when tied). */
export function lmHeadWeight(config: ModelConfig, weights: WeightMap): F32Tensor {
  const name = config.tieWordEmbeddings ? tensorNames.embedTokens : tensorNames.lmHead;
  return requireWeight(weights, name, [config.vocabSize, config.hiddenSize]);
}

export function buildLmHeadGraph(
  config: ModelConfig,
  weights: WeightMap,
  options: LmHeadGraphOptions = {},
): Uint8Array {
  const h = config.hiddenSize;
  const g = new GraphBuilder('lm_head');
  const x = g.input('x', 'float', ['S', h]);
  const normed = rmsNorm(g, x, requireWeight(weights, tensorNames.finalNorm, [h]), 'norm', config.rmsNormEps);
  const logits = linear(g, normed, lmHeadWeight(config, weights), 'lm_head', { format: options.format ?? 'fp32' });
  g.output(logits, 'logits', 'float', ['S', config.vocabSize]);
  return g.toModelBytes();
}
