import {
  openModelDir,
  tensorNames,
  type ModelConfig,
  type OpenModelDir,
  type WeightMap,
  type F32Tensor,
} from '@switchyard/model';

/** Where a worker gets the weights of the experts it is told to host. */
export interface ExpertSource {
  readonly config: ModelConfig;
  readonly modelName: string;
  /** SHA-256 (hex) of the model's weights, when known (a model directory records it). */
  readonly weightsDigest?: string;
  /** The three SwiGLU tensors of one expert, under their canonical names. */
  readExpert(layer: number, expertId: number): Promise<WeightMap>;
  close(): Promise<void>;
}

const PROJECTIONS = ['gate_proj', 'up_proj', 'down_proj'] as const;

/** Reads expert tensors lazily from a model directory: a worker reads only what it hosts. */
export async function modelDirExpertSource(dir: string): Promise<ExpertSource> {
  const model: OpenModelDir = await openModelDir(dir);
  return {
    config: model.config,
    modelName: model.config.name,
    weightsDigest: model.weightsDigest,
    async readExpert(layer, expertId) {
      const map = new Map<string, F32Tensor>();
      for (const proj of PROJECTIONS) {
        const name = tensorNames.expert(layer, expertId, proj);
        map.set(name, await model.readTensor(name));
      }
      return map;
    },
    close: () => model.close(),
  };
}

/** Expert weights already in memory (tests, single-process runs). */
export function memoryExpertSource(config: ModelConfig, weights: WeightMap): ExpertSource {
  return {
    config,
    modelName: config.name,
    async readExpert(layer, expertId) {
      const map = new Map<string, F32Tensor>();
      for (const proj of PROJECTIONS) {
        const name = tensorNames.expert(layer, expertId, proj);
        const t = weights.get(name);
        if (t) map.set(name, t);
      }
      return map;
    },
    close: async () => {},
  };
}
