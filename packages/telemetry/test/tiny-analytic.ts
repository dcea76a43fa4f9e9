/**
 * The analytic cost of one row of `tiny` with a shared expert (`getPreset('tiny', { sharedExpertFfnSize:
 * 32 })`), written from its shapes by hand — not through the code under test: H 64, 2 layers, 4 heads /
 * 2 KV heads of 16, 8 experts of FFN 32, shared FFN 32, vocabulary 258.
 *
 * Per layer: attention projections 2·H·(nH·D) + 2·H·(nKV·D), two RMSNorms of H, router E·H, shared
 * expert 3·H·S; per distinct routed expert 3·H·F; the LM head V·H and the final norm H only when the row
 * samples; FLOPs = 2 × matmul parameters + 4·nH·D per attended token (position + 1) per layer.
 */
export function analytic(
  position: number,
  distinctExperts: number,
  sampled: boolean,
): { activeParams: number; flops: number } {
  const [H, L, nH, nKV, D, E, F, S, V] = [64, 2, 4, 2, 16, 8, 32, 32, 258];
  const attention = 2 * H * nH * D + 2 * H * nKV * D;
  const perLayerMatmul = attention + E * H + 3 * H * S;
  const matmul = L * perLayerMatmul + distinctExperts * 3 * H * F + (sampled ? V * H : 0);
  const activeParams = L * (perLayerMatmul + 2 * H) + distinctExperts * 3 * H * F + (sampled ? V * H + H : 0);
  return { activeParams, flops: 2 * matmul + L * 4 * nH * D * (position + 1) };
}
