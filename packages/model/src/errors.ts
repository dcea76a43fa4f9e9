/**
 * The model package's failures. One class per failure, each with a literal `code` so callers can
 * switch on it without `instanceof` across package boundaries, and a message that names the field,
 * tensor, file or value at fault.
 */

interface ErrorOptionsWithCause {
  readonly cause?: unknown;
}

/** A config (ours or a Hugging Face one) has a missing, mistyped or inconsistent field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'MODEL_CONFIG_INVALID';
  /** Dotted path of the offending field, e.g. `config.numKvHeads`. */
  readonly field: string;

  constructor(field: string, reason: string, options: ErrorOptionsWithCause = {}) {
    super(`${field}: ${reason}`, options);
    this.field = field;
  }
}

/** A preset name that does not exist. */
export class UnknownPresetError extends Error {
  override readonly name = 'UnknownPresetError';
  readonly code = 'MODEL_PRESET_UNKNOWN';
  readonly preset: string;

  constructor(preset: string, known: readonly string[]) {
    super(`unknown model preset "${preset}" (known: ${known.join(', ')})`);
    this.preset = preset;
  }
}

/** A safetensors file (or shard index) is malformed: bad header, offsets outside the file, bad dtype. */
export class SafetensorsFormatError extends Error {
  override readonly name = 'SafetensorsFormatError';
  readonly code = 'SAFETENSORS_FORMAT';
  readonly file: string;

  constructor(file: string, reason: string, options: ErrorOptionsWithCause = {}) {
    super(`${file}: ${reason}`, options);
    this.file = file;
  }
}

/** A tensor the config requires is not in the checkpoint. */
export class MissingTensorError extends Error {
  override readonly name = 'MissingTensorError';
  readonly code = 'TENSOR_MISSING';
  readonly tensor: string;

  constructor(tensor: string, where: string) {
    super(`missing tensor "${tensor}" in ${where}`);
    this.tensor = tensor;
  }
}

/** A tensor exists but its shape is not the one the config requires. */
export class TensorShapeError extends Error {
  override readonly name = 'TensorShapeError';
  readonly code = 'TENSOR_SHAPE_MISMATCH';
  readonly tensor: string;
  readonly expected: readonly number[];
  readonly actual: readonly number[];

  constructor(tensor: string, expected: readonly number[], actual: readonly number[]) {
    super(`tensor "${tensor}" has shape [${actual.join(', ')}], expected [${expected.join(', ')}]`);
    this.tensor = tensor;
    this.expected = expected;
    this.actual = actual;
  }
}

/** A tensor exists but its dtype is not one the caller accepts. */
export class TensorDtypeError extends Error {
  override readonly name = 'TensorDtypeError';
  readonly code = 'TENSOR_DTYPE_MISMATCH';
  readonly tensor: string;
  readonly expected: string;
  readonly actual: string;

  constructor(tensor: string, expected: string, actual: string) {
    super(`tensor "${tensor}" has dtype ${actual}, expected ${expected}`);
    this.tensor = tensor;
    this.expected = expected;
    this.actual = actual;
  }
}

/** A Hugging Face checkpoint whose architecture we cannot import. */
export class UnknownArchitectureError extends Error {
  override readonly name = 'UnknownArchitectureError';
  readonly code = 'HF_ARCHITECTURE_UNKNOWN';
  readonly architecture: string;

  constructor(architecture: string, known: readonly string[]) {
    super(`unsupported Hugging Face architecture "${architecture}" (supported: ${known.join(', ')})`);
    this.architecture = architecture;
  }
}

/** A model directory is missing a file, has an unsupported format version, or its weights digest does not match. */
export class ModelDirError extends Error {
  override readonly name = 'ModelDirError';
  readonly code = 'MODEL_DIR_INVALID';
  readonly dir: string;

  constructor(dir: string, reason: string, options: ErrorOptionsWithCause = {}) {
    super(`${dir}: ${reason}`, options);
    this.dir = dir;
  }
}

/** A checkpoint holds a tensor the config does not call for (e.g. `lm_head.weight` with tied embeddings). */
export class UnexpectedTensorError extends Error {
  override readonly name = 'UnexpectedTensorError';
  readonly code = 'TENSOR_UNEXPECTED';
  readonly tensor: string;

  constructor(tensor: string, where: string) {
    super(`unexpected tensor "${tensor}" in ${where}: the config does not use it`);
    this.tensor = tensor;
  }
}
