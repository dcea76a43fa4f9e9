/** The plain-TypeScript reference forward (tests only; no onnxruntime). */
export {
  referenceForward,
  referenceEmbed,
  referenceMoe,
  referenceLmHead,
  referenceExpertWeights,
  ReferenceKvCache,
  type ReferenceForwardResult,
  type ReferenceLayerTrace,
} from './forward.ts';
export { referenceAttention, type ReferenceAttentionOutput } from './attention.ts';
export { referenceRoute, type ReferenceRouting } from './router.ts';
export { maxAbsDiff, cosineSimilarity } from './compare.ts';
export { referenceSwiGlu, type ReferenceSwiGluWeights } from './expert.ts';
