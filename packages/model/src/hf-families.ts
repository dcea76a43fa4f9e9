/**
 * The Hugging Face MoE families we import and export, in one table: architecture and `model_type`
 * names, the config fields (with the defaults of each family's HF config class), which of our
 * features the family has, and how its tensor names differ from our canonical (Qwen/OLMoE) names.
 */

import { ConfigError } from './errors.ts';
import type { ModelConfig } from './types.ts';

export type HfFamily = 'mixtral' | 'olmoe' | 'qwen2_moe' | 'qwen3_moe';
export const HF_FAMILIES: readonly HfFamily[] = ['mixtral', 'olmoe', 'qwen2_moe', 'qwen3_moe'];

interface FamilyDefaults {
  readonly ropeTheta: number;
  readonly rmsNormEps: number;
  readonly maxPositionEmbeddings: number;
  readonly normTopKProb: boolean;
}

export interface HfFamilySpec {
  readonly family: HfFamily;
  readonly architecture: string;
  readonly modelType: string;
  /** HF field holding the routed expert's intermediate size. */
  readonly expertFfnField: 'intermediate_size' | 'moe_intermediate_size';
  /** HF field holding the number of routed experts. */
  readonly numExpertsField: 'num_local_experts' | 'num_experts';
  readonly defaults: FamilyDefaults;
  /** Features fixed by the family's modelling code, checked on export and set on import. */
  readonly fixed: Partial<Pick<ModelConfig, 'qkNorm' | 'attentionBias' | 'sharedExpertGate' | 'normTopKProb'>>;
  readonly hasSharedExpert: boolean;
  /** Canonical tensor name → the family's HF tensor name. */
  readonly hfTensorName: (canonical: string) => string;
}

const identity = (name: string): string => name;

const MIXTRAL_EXPERT_WEIGHT: Readonly<Record<string, string>> = { gate_proj: 'w1', up_proj: 'w3', down_proj: 'w2' };

/** `mlp.gate` → `block_sparse_moe.gate`; `mlp.experts.{e}.gate_proj/up_proj/down_proj` → `w1/w3/w2`. */
function mixtralTensorName(canonical: string): string {
  const expert = /^(model\.layers\.\d+)\.mlp\.experts\.(\d+)\.(gate_proj|up_proj|down_proj)\.weight$/.exec(canonical);
  if (expert !== null)
    return `${expert[1]}.block_sparse_moe.experts.${expert[2]}.${MIXTRAL_EXPERT_WEIGHT[expert[3] ?? ''] ?? ''}.weight`;
  return canonical.replace(/^(model\.layers\.\d+)\.mlp\.gate\.weight$/, '$1.block_sparse_moe.gate.weight');
}

export const HF_FAMILY_SPECS: Readonly<Record<HfFamily, HfFamilySpec>> = {
  mixtral: {
    family: 'mixtral',
    architecture: 'MixtralForCausalLM',
    modelType: 'mixtral',
    expertFfnField: 'intermediate_size',
    numExpertsField: 'num_local_experts',
    defaults: { ropeTheta: 1e6, rmsNormEps: 1e-5, maxPositionEmbeddings: 4096 * 32, normTopKProb: true },
    // HF Mixtral always renormalises the top-k softmax weights.
    fixed: { qkNorm: 'none', attentionBias: false, normTopKProb: true },
    hasSharedExpert: false,
    hfTensorName: mixtralTensorName,
  },
  olmoe: {
    family: 'olmoe',
    architecture: 'OlmoeForCausalLM',
    modelType: 'olmoe',
    expertFfnField: 'intermediate_size',
    numExpertsField: 'num_experts',
    defaults: { ropeTheta: 10000, rmsNormEps: 1e-5, maxPositionEmbeddings: 4096, normTopKProb: false },
    fixed: { qkNorm: 'projection', attentionBias: false },
    hasSharedExpert: false,
    hfTensorName: identity,
  },
  qwen2_moe: {
    family: 'qwen2_moe',
    architecture: 'Qwen2MoeForCausalLM',
    modelType: 'qwen2_moe',
    expertFfnField: 'moe_intermediate_size',
    numExpertsField: 'num_experts',
    defaults: { ropeTheta: 10000, rmsNormEps: 1e-6, maxPositionEmbeddings: 32768, normTopKProb: false },
    // Qwen2-MoE's q/k/v projections always carry biases and its shared expert is always gated.
    fixed: { qkNorm: 'none', attentionBias: true, sharedExpertGate: true },
    hasSharedExpert: true,
    hfTensorName: identity,
  },
  qwen3_moe: {
    family: 'qwen3_moe',
    architecture: 'Qwen3MoeForCausalLM',
    modelType: 'qwen3_moe',
    expertFfnField: 'moe_intermediate_size',
    numExpertsField: 'num_experts',
    defaults: { ropeTheta: 10000, rmsNormEps: 1e-6, maxPositionEmbeddings: 32768, normTopKProb: false },
    fixed: { qkNorm: 'head' },
    hasSharedExpert: false,
    hfTensorName: identity,
  },
};

/** The family whose architecture (or, failing that, `model_type`) matches, if any. */
export function familyOfHfConfig(
  architecture: string | undefined,
  modelType: string | undefined,
): HfFamilySpec | undefined {
  const specs = Object.values(HF_FAMILY_SPECS);
  return (
    specs.find((s) => s.architecture === architecture) ??
    (architecture === undefined ? specs.find((s) => s.modelType === modelType) : undefined)
  );
}

/** Throws ConfigError when `config` uses a feature the family's modelling code does not have. */
export function checkRepresentable(spec: HfFamilySpec, config: ModelConfig): void {
  for (const [key, value] of Object.entries(spec.fixed)) {
    if (config[key as keyof ModelConfig] !== value) {
      throw new ConfigError(
        `config.${key}`,
        `${JSON.stringify(config[key as keyof ModelConfig])} cannot be expressed in ${spec.architecture} (always ${JSON.stringify(value)})`,
      );
    }
  }
  if (spec.hasSharedExpert !== config.sharedExpertFfnSize > 0) {
    throw new ConfigError(
      'config.sharedExpertFfnSize',
      `${config.sharedExpertFfnSize}: ${spec.architecture} ${spec.hasSharedExpert ? 'always has' : 'has no'} shared expert`,
    );
  }
  if (config.scoring !== 'softmax')
    throw new ConfigError(
      'config.scoring',
      `${config.scoring} cannot be expressed in ${spec.architecture} (softmax only)`,
    );
  if (config.selectionBias)
    throw new ConfigError('config.selectionBias', `cannot be expressed in ${spec.architecture}`);
  if (config.routedScalingFactor !== 1) {
    throw new ConfigError(
      'config.routedScalingFactor',
      `${config.routedScalingFactor} cannot be expressed in ${spec.architecture} (always 1)`,
    );
  }
}
