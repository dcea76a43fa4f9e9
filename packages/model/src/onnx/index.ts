/** ONNX graph builders and the onnxruntime session wrapper (the only onnxruntime import in the repo). */
export { GraphBuilder, type Value } from './graph-builder.ts';
export { linear, rmsNorm, WEIGHT_FORMATS, type WeightFormat, type NbitsAccuracyLevel, type LinearOptions } from './layers.ts';
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
