import {
  assembleEngine,
  type EngineBundle,
  type EngineCoreOptions,
  type EngineModel,
  type ExpertExecutor,
} from '@switchyard/engine';
import type { SessionOptions } from './session.ts';
import { createDenseKernels, createLocalExpertExecutor, weightFormatOf, type ExpertDtype } from './kernels.ts';

export interface EngineOptions extends EngineCoreOptions {
  readonly expertDtype: ExpertDtype;
  /** Attention projections and the LM head in int8 too (default fp32). */
  readonly denseDtype: 'fp32' | 'int8';
  readonly session?: SessionOptions;
}

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = Object.freeze({
  expertDtype: 'fp32',
  denseDtype: 'fp32',
  blockSize: 16,
  scheduler: Object.freeze({ maxBatchedTokens: 2048, maxRunningSequences: 64 }),
});

/**
 * An engine on onnxruntime: opens the dense graphs here and runs the experts through `experts`, or in
 * process when it is omitted (the monolithic engine, the correctness oracle of the distributed one).
 */
export async function createEngine(
  model: EngineModel,
  options: EngineOptions = DEFAULT_ENGINE_OPTIONS,
  experts?: ExpertExecutor,
): Promise<EngineBundle> {
  const { config, weights } = model;
  const kernelOptions = {
    ...(options.session ? { session: options.session } : {}),
    denseFormat: weightFormatOf(options.denseDtype),
  };
  const dense = await createDenseKernels(config, weights, kernelOptions);
  const executor = experts ?? (await createLocalExpertExecutor(config, weights, options.expertDtype, kernelOptions));
  return assembleEngine(model, options, { dense, experts: executor });
}
