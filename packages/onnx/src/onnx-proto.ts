/**
 * A minimal subset of `onnx.proto` (field numbers exactly as upstream), enough to serialise a
 * ModelProto with a single graph, initializers as `raw_data` and typed graph inputs/outputs.
 */
import protobuf from 'protobufjs';

const ONNX_PROTO_SUBSET = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5;
    FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10;
  }
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  optional AttributeType type = 20;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
  optional string domain = 7;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}

message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}

message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  optional string name = 8;
  optional bytes raw_data = 9;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
}
`;

/** `TensorProto.DataType` values used here. */
export const OnnxDataType = {
  float: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
} as const;
export type OnnxElemType = keyof typeof OnnxDataType;

/** `AttributeProto.AttributeType` values used here. */
export const OnnxAttributeType = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

export interface TensorProtoObject {
  readonly name: string;
  readonly dims: readonly number[];
  readonly data_type: number;
  readonly raw_data: Uint8Array;
}

export interface AttributeProtoObject {
  readonly name: string;
  readonly type: number;
  readonly f?: number;
  readonly i?: number;
  readonly s?: Uint8Array;
  readonly floats?: readonly number[];
  readonly ints?: readonly number[];
}

export interface NodeProtoObject {
  readonly op_type: string;
  readonly name: string;
  readonly domain: string;
  readonly input: readonly string[];
  readonly output: readonly string[];
  readonly attribute: readonly AttributeProtoObject[];
}

/** A dimension is a fixed size or a symbolic name (`S`, `P`, …). */
export type Dim = number | string;

export interface ValueInfoObject {
  readonly name: string;
  readonly elemType: OnnxElemType;
  readonly dims: readonly Dim[];
}

export interface ModelProtoObject {
  readonly graphName: string;
  readonly nodes: readonly NodeProtoObject[];
  readonly initializers: readonly TensorProtoObject[];
  readonly inputs: readonly ValueInfoObject[];
  readonly outputs: readonly ValueInfoObject[];
  readonly opsets: readonly { readonly domain: string; readonly version: number }[];
}

/** ONNX IR version 8 pairs with opset 17 (onnx 1.12). */
const IR_VERSION = 8;

const root = protobuf.parse(ONNX_PROTO_SUBSET, { keepCase: true }).root;
const modelProtoType = root.lookupType('onnx.ModelProto');

function valueInfo(v: ValueInfoObject): Record<string, unknown> {
  return {
    name: v.name,
    type: {
      tensor_type: {
        elem_type: OnnxDataType[v.elemType],
        shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

/** Serialise a model to ModelProto bytes. */
export function encodeModelProto(model: ModelProtoObject): Uint8Array {
  const message = modelProtoType.fromObject({
    ir_version: IR_VERSION,
    producer_name: 'switchyard',
    producer_version: '0.1.0',
    opset_import: model.opsets.map((o) => ({ domain: o.domain, version: o.version })),
    graph: {
      name: model.graphName,
      node: model.nodes,
      initializer: model.initializers,
      input: model.inputs.map(valueInfo),
      output: model.outputs.map(valueInfo),
    },
  });
  return modelProtoType.encode(message).finish();
}
