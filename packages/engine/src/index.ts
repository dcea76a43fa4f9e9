export { createByteTokenizer, type Tokenizer } from './tokenizer.ts';
export { resolveSamplingParams, type SamplingParams, InvalidSamplingError } from './sampling-params.ts';
export { type FinishReason, Sequence } from './sequence.ts';
export { type ScheduledChunk } from './step-plan.ts';
export { type Usage, type TokenEvent, type TokenSink } from './token-event.ts';
export { MAX_TOP_LOGPROBS, tokenLogprob, type TokenLogprob, type TopLogprob } from './logprobs.ts';

export { type GenerateRequest, RequestRejectedError } from './engine.ts';
export { EngineLoop } from './engine-loop.ts';
export { type LayerResult, type ExpertExecutor } from './expert-executor.ts';
export { type ExpertKernel, LocalExpertExecutor } from './local-expert-executor.ts';
export {
  type AttentionOutput,
  type AttentionKernel,
  type AttentionSlot,
  type BatchedAttentionKernel,
  type RowKernel,
  type DenseKernels,
} from './dense-kernels.ts';

export { type RoutingObserver } from './moe-model-runner.ts';

export { assembleEngine, type EngineCoreOptions, type EngineModel, type EngineBundle } from './create-engine.ts';
export { PrefixHasher } from './prefix-hasher.ts';
export { loadHfTokenizer, TokenizerLoadError } from './hf-tokenizer.ts';
export { type RequestMeta, type GenerationBackend } from './generation-backend.ts';
export { KvPageAccess, type EvictedPage, type ImportResult } from './page-access.ts';
export { PageStore } from './page-store.ts';
export { byteLevelBpeTokenizerJson } from './synthetic-tokenizer.ts';
