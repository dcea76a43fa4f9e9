/**
 * A small ONNX graph builder: values are plain strings (tensor names), ops return the names of their
 * outputs, and `toModelBytes()` serialises the whole thing. Opset 17 default domain, plus
 * `com.microsoft` (version 1) for the contrib ops.
 */
import {
  encodeModelProto,
  OnnxAttributeType,
  OnnxDataType,
  type AttributeProtoObject,
  type Dim,
  type NodeProtoObject,
  type OnnxElemType,
  type TensorProtoObject,
  type ValueInfoObject,
} from './onnx-proto.ts';

export const DEFAULT_OPSET = 17;
export const MS_DOMAIN = 'com.microsoft';

/** A tensor-valued graph edge, named. */
export type Value = string;

/** Attribute values are tagged so that `1` (int) and `1.0` (float) never get confused. */
export type Attr =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'floats'; readonly value: readonly number[] };

export const attrInt = (value: number): Attr => ({ kind: 'int', value });
export const attrFloat = (value: number): Attr => ({ kind: 'float', value });
export const attrString = (value: string): Attr => ({ kind: 'string', value });
export const attrInts = (value: readonly number[]): Attr => ({ kind: 'ints', value });

export type InitializerData = Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

export interface NodeOptions {
  readonly domain?: string;
  readonly numOutputs?: number;
}

function encodeAttr(name: string, attr: Attr): AttributeProtoObject {
  switch (attr.kind) {
    case 'int':
      return { name, type: OnnxAttributeType.int, i: attr.value };
    case 'float':
      return { name, type: OnnxAttributeType.float, f: attr.value };
    case 'string':
      return { name, type: OnnxAttributeType.string, s: new TextEncoder().encode(attr.value) };
    case 'ints':
      return { name, type: OnnxAttributeType.ints, ints: attr.value };
    case 'floats':
      return { name, type: OnnxAttributeType.floats, floats: attr.value };
  }
}

function elemTypeOf(data: InitializerData): OnnxElemType {
  if (data instanceof Float32Array) return 'float';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int32Array) return 'int32';
  return 'int64';
}

/**
 * Accumulates nodes, initializers and graph inputs/outputs. Every generated name is unique within the
 * builder; graph inputs/outputs keep the names their callers give them.
 */
export class GraphBuilder {
  readonly #name: string;
  readonly #nodes: NodeProtoObject[] = [];
  readonly #initializers: TensorProtoObject[] = [];
  readonly #inputs: ValueInfoObject[] = [];
  readonly #outputs: ValueInfoObject[] = [];
  readonly #usedDomains = new Set<string>();
  /** Values renamed by `output()`: later uses of the old name resolve to the output name. */
  readonly #aliases = new Map<Value, Value>();
  #counter = 0;

  constructor(name: string) {
    this.#name = name;
  }

  #fresh(prefix: string): string {
    this.#counter += 1;
    return `${prefix}_${this.#counter}`;
  }

  input(name: string, elemType: OnnxElemType, dims: readonly Dim[]): Value {
    this.#inputs.push({ name, elemType, dims });
    return name;
  }

  /**
   * Declares `value` as a graph output called `name`. The producing node's output is renamed in place
   * when possible (later uses of `value` follow the rename), so no Identity copy runs; a graph input,
   * an initializer or a value already exported is copied by an Identity node instead.
   */
  output(value: Value, name: string, elemType: OnnxElemType, dims: readonly Dim[]): void {
    const source = this.#aliases.get(value) ?? value;
    const isProduced = this.#nodes.some((n) => n.output.includes(source));
    const isTaken = this.#inputs.some((i) => i.name === source) || this.#outputs.some((o) => o.name === source);
    if (isProduced && !isTaken) {
      this.#renameValue(source, name);
      this.#aliases.set(value, name);
      this.#aliases.set(source, name);
    } else {
      this.#nodes.push(this.#makeNode('Identity', [source], [name], {}, ''));
    }
    this.#outputs.push({ name, elemType, dims });
  }

  #renameValue(from: string, to: string): void {
    for (let k = 0; k < this.#nodes.length; k++) {
      const n = this.#nodes[k];
      if (n === undefined) continue;
      this.#nodes[k] = {
        ...n,
        input: n.input.map((v) => (v === from ? to : v)),
        output: n.output.map((v) => (v === from ? to : v)),
      };
    }
  }

  initializer(name: string, data: InitializerData, dims: readonly number[]): Value {
    const count = dims.reduce((a, b) => a * b, 1);
    if (count !== data.length) {
      throw new Error(`initializer ${name}: ${data.length} elements for dims [${dims.join(', ')}]`);
    }
    const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.#initializers.push({ name, dims, data_type: OnnxDataType[elemTypeOf(data)], raw_data: raw });
    return name;
  }

  constF32(values: readonly number[] | Float32Array, dims: readonly number[] = [values.length]): Value {
    return this.initializer(this.#fresh('const'), Float32Array.from(values), dims);
  }

  constI64(values: readonly number[], dims: readonly number[] = [values.length]): Value {
    return this.initializer(this.#fresh('const'), BigInt64Array.from(values.map((v) => BigInt(v))), dims);
  }

  scalarF32(value: number): Value {
    return this.constF32([value], []);
  }

  scalarI64(value: number): Value {
    return this.constI64([value], []);
  }

  #makeNode(
    opType: string,
    inputs: readonly Value[],
    outputs: readonly Value[],
    attrs: Readonly<Record<string, Attr>>,
    domain: string,
  ): NodeProtoObject {
    return {
      op_type: opType,
      name: this.#fresh(opType),
      domain,
      input: inputs.map((v) => this.#aliases.get(v) ?? v),
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => encodeAttr(k, v)),
    };
  }

  /** Adds a node with `numOutputs` outputs (default 1) and returns their names. */
  node(
    opType: string,
    inputs: readonly Value[],
    attrs: Readonly<Record<string, Attr>> = {},
    options: NodeOptions = {},
  ): Value[] {
    const domain = options.domain ?? '';
    if (domain !== '') this.#usedDomains.add(domain);
    const outputs = Array.from({ length: options.numOutputs ?? 1 }, () => this.#fresh(opType.toLowerCase()));
    this.#nodes.push(this.#makeNode(opType, inputs, outputs, attrs, domain));
    return outputs;
  }

  /** Adds a single-output node and returns its output. */
  op(opType: string, inputs: readonly Value[], attrs: Readonly<Record<string, Attr>> = {}, domain = ''): Value {
    const [out] = this.node(opType, inputs, attrs, { domain });
    if (out === undefined) throw new Error('unreachable: node without output');
    return out;
  }

  matmul(a: Value, b: Value): Value {
    return this.op('MatMul', [a, b]);
  }
  add(a: Value, b: Value): Value {
    return this.op('Add', [a, b]);
  }
  sub(a: Value, b: Value): Value {
    return this.op('Sub', [a, b]);
  }
  mul(a: Value, b: Value): Value {
    return this.op('Mul', [a, b]);
  }
  div(a: Value, b: Value): Value {
    return this.op('Div', [a, b]);
  }
  neg(a: Value): Value {
    return this.op('Neg', [a]);
  }
  sigmoid(a: Value): Value {
    return this.op('Sigmoid', [a]);
  }
  reshape(x: Value, shape: readonly number[]): Value {
    return this.op('Reshape', [x, this.constI64(shape)]);
  }
  transpose(x: Value, perm: readonly number[]): Value {
    return this.op('Transpose', [x], { perm: attrInts(perm) });
  }
  concat(values: readonly Value[], axis: number): Value {
    return this.op('Concat', values, { axis: attrInt(axis) });
  }
  unsqueeze(x: Value, axes: readonly number[]): Value {
    return this.op('Unsqueeze', [x, this.constI64(axes)]);
  }
  /** Splits `x` into `count` equal parts along `axis`. */
  split(x: Value, axis: number, count: number): Value[] {
    return this.node('Split', [x], { axis: attrInt(axis) }, { numOutputs: count });
  }

  toModelBytes(): Uint8Array {
    const opsets = [{ domain: '', version: DEFAULT_OPSET }];
    for (const domain of this.#usedDomains) opsets.push({ domain, version: 1 });
    return encodeModelProto({
      graphName: this.#name,
      nodes: this.#nodes,
      initializers: this.#initializers,
      inputs: this.#inputs,
      outputs: this.#outputs,
      opsets,
    });
  }
}
