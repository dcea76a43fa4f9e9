/** Public entry of @switchyard/model. */
export { type ModelConfig, type F32Tensor, type WeightMap } from './types.ts';

export { isPresetName, getPreset, PRESET_NAMES, type PresetName, ROUTER_SKEW } from './presets.ts';
export { type ExpertProjection, tensorNames } from './weight-layout.ts';
export { Prng } from './prng.ts';
export { randomWeights } from './random-weights.ts';
export { shapeOfConfig, type AttentionShape, type ShapeSpec } from './shape-spec.ts';
export { isRealModelName, getRealModel, REAL_MODEL_NAMES } from './real-models.ts';
export {
  countParams,
  countConfigParams,
  swigluSizeBytes,
  expertSizeBytes,
  weightsSizeBytes,
  type ExpertWeightFormat,
} from './params.ts';

export {
  writeModelDir,
  initModelDir,
  openModelDir,
  loadModelDir,
  readModelDirInfo,
  type ModelDirInfo,
  type OpenModelDir,
  type LoadedModel,
} from './model-dir.ts';
export { type HfFamily } from './hf-families.ts';
export { importHfCheckpoint } from './hf-import.ts';
export { resolveCheckpointDir, type CheckpointLocation } from './hub-cache.ts';
export { writeHfCheckpoint } from './hf-export.ts';
export { requireWeight, transpose2d, concatRows } from './weight-access.ts';
export {
  referenceForward,
  referenceEmbed,
  referenceLmHead,
  ReferenceKvCache,
  referenceAttention,
  referenceRoute,
  maxAbsDiff,
  cosineSimilarity,
  referenceSwiGlu,
} from './reference/index.ts';
export { pathExists } from './path-exists.ts';
