/** Public entry of @switchyard/model. */

export type * from './types.ts';
export * from './errors.ts';
export * from './config.ts';
export * from './presets.ts';
export * from './weight-layout.ts';
export * from './prng.ts';
export * from './random-weights.ts';
export * from './shape-spec.ts';
export * from './real-models.ts';
export * from './params.ts';
export * from './dtype.ts';
export * from './safetensors-format.ts';
export * from './safetensors.ts';
export * from './safetensors-writer.ts';
export * from './checkpoint.ts';
export * from './model-dir.ts';
export * from './hf-families.ts';
export * from './hf-import.ts';
export * from './hf-export.ts';
// ONNX graph builders and the TS reference forward (owned by the ONNX engineer) are exported here:
export * from './onnx/index.ts';
export * from './reference/index.ts';
export * from './path-exists.ts';
