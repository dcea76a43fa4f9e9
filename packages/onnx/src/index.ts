/**
 * Public entry of @switchyard/onnx: ONNX graph builders, the onnxruntime session wrapper, the kernels the
 * engine runs on, and `createEngine`. This is the only package that imports onnxruntime-node.
 */
export { GraphBuilder, type Value } from './graph-builder.ts';
export {
  linear,
  rmsNorm,
  WEIGHT_FORMATS,
  type WeightFormat,
  type NbitsAccuracyLevel,
  type LinearOptions,
} from './layers.ts';
export { quantizeInt8PerChannel, dequantizeInt8PerChannel, type Int8PerChannel } from './quantize.ts';
export {
  buildAttentionGraph,
  ropeInverseFrequencies,
  ATTENTION_INPUTS,
  ATTENTION_OUTPUTS,
  type AttentionGraphOptions,
} from './attention-graph.ts';
export { buildBatchedAttentionGraph } from './attention-batch-graph.ts';
export {
  buildExpertGraph,
  buildExpertGroupGraph,
  buildSwiGluGraph,
  expertWeights,
  expertTensorName,
  type ExpertRef,
  type ExpertGraphOptions,
  type SwiGluWeights,
} from './expert-graph.ts';
export { buildLmHeadGraph, lmHeadWeight, type LmHeadGraphOptions } from './lm-head-graph.ts';
export {
  createSession,
  resolveSessionOptions,
  SessionError,
  type OnnxSession,
  type SessionOptions,
  type ExecutionProvider,
  type FeedData,
  type TensorFeed,
  type TensorResult,
  type RunOptions,
} from './session.ts';
export {
  allExperts,
  createDenseKernels,
  createLocalExpertExecutor,
  openExpertKernel,
  openExpertKernelFromGraph,
  rowKernel,
  weightFormatOf,
  type ExpertDtype,
  type KernelOptions,
} from './kernels.ts';
export { createEngine, DEFAULT_ENGINE_OPTIONS, type EngineOptions } from './create-engine.ts';
export {
  measureInt8MatMulOps,
  measureMatMulFlops,
  measureReadBandwidth,
  type BoundOptions,
  type PhysicalBound,
} from './physical-bounds.ts';
