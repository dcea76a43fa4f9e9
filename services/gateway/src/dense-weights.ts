import { openModelDir, type F32Tensor, type LoadedModel } from '@switchyard/model';

/** Whether a tensor belongs to a routed expert (those live on the expert workers). */
export const isRoutedExpertTensor = (name: string): boolean => name.includes('.mlp.experts.');

/**
 * Loads a model directory for a gateway: every tensor, or — when the experts live on workers — every
 * tensor except the routed experts', so a gateway's memory holds only the dense part.
 */
export async function loadGatewayModel(dir: string, includeExperts: boolean): Promise<LoadedModel> {
  const model = await openModelDir(dir);
  try {
    const weights = new Map<string, F32Tensor>();
    for (const spec of model.layout) {
      if (!includeExperts && isRoutedExpertTensor(spec.name)) continue;
      weights.set(spec.name, await model.readTensor(spec.name));
    }
    return { config: model.config, weights, weightsDigest: model.weightsDigest, tokenizerPath: model.tokenizerPath };
  } finally {
    await model.close();
  }
}
