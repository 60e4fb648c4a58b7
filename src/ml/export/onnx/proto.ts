// A small ONNX graph builder over onnx-proto's generated protobuf messages: float32 initializers, nodes with
// integer attributes, one input and one output. No Python-free TF.js -> ONNX converter exists, so facepipe
// writes its inference graph itself (efficientnet-graph.ts); this file knows the ONNX message layout only.
// onnx-proto's typings name the global `Long` (int64 fields); tsconfig loads only @types/node by default.
/// <reference types="long" />
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';

const { onnx } = onnxProto;

/** Default-domain opset the graph is written for (Conv, Gemm, GlobalAveragePool, Sigmoid, Mul, Add, ...). */
export const ONNX_OPSET = 13;
/** IR version 7 (ONNX 1.8) is the first that pairs with opset 13; every runtime since reads it. */
export const ONNX_IR_VERSION = 7;

/** A dimension: a fixed size, or a symbolic name ('N' for the batch). */
export type Dim = number | string;

/** Node attributes: ONNX INT for an integer, INTS for an integer list (all this graph needs). */
export type IntAttributes = Record<string, number | number[]>;

function attribute(name: string, value: number | number[]): OnnxTypes.IAttributeProto {
  const ints = Array.isArray(value) ? value : [value];
  if (!ints.every(Number.isInteger)) throw new Error(`ONNX attribute '${name}': integers only, got ${String(value)}`);
  return Array.isArray(value)
    ? { name, type: onnx.AttributeProto.AttributeType.INTS, ints: value }
    : { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}

function valueInfo(name: string, dims: Dim[]): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export interface ModelOptions {
  graphName: string;
  input: { name: string; dims: Dim[] };
  output: { name: string; dims: Dim[] };
  /** metadata_props: what a consumer must know that the graph cannot say (input layout, scaling, ...). */
  metadata: Record<string, string>;
  docString: string;
  producerVersion: string;
}

export class OnnxGraphBuilder {
  private readonly nodes: OnnxTypes.INodeProto[] = [];
  private readonly initializers: OnnxTypes.ITensorProto[] = [];
  private readonly used = new Set<string>();

  /** Reserves the graph input's name so that no node output takes it. */
  input(name: string): string {
    if (this.used.has(name)) throw new Error(`ONNX graph: input name '${name}' already used`);
    this.used.add(name);
    return name;
  }

  /** A float32 initializer (raw little-endian data); returns its name. */
  constant(name: string, dims: number[], data: Float32Array): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== data.length)
      throw new Error(`ONNX initializer '${name}': ${data.length} values for [${dims.join(', ')}]`);
    const unique = this.unique(name);
    const le = new Float32Array(data); // a copy: the message holds a view of it until encode()
    this.initializers.push({
      name: unique,
      dims,
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(le.buffer, le.byteOffset, le.byteLength),
    });
    return unique;
  }

  /** Appends a node; returns the name of its (single) output, derived from `name`. */
  node(opType: string, inputs: string[], name: string, attrs: IntAttributes = {}): string {
    const output = this.unique(name);
    this.nodes.push({
      opType,
      name: output,
      input: inputs,
      output: [output],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }

  /** Serialised ModelProto. The graph's last node must produce `opts.output.name`. */
  encode(opts: ModelOptions): Uint8Array {
    if (!this.nodes.some((n) => n.output?.[0] === opts.output.name))
      throw new Error(`ONNX graph: no node produces the output '${opts.output.name}'`);
    const model: OnnxTypes.IModelProto = {
      irVersion: ONNX_IR_VERSION,
      opsetImport: [{ domain: '', version: ONNX_OPSET }],
      producerName: 'facepipe',
      producerVersion: opts.producerVersion,
      docString: opts.docString,
      graph: {
        name: opts.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: [valueInfo(opts.input.name, opts.input.dims)],
        output: [valueInfo(opts.output.name, opts.output.dims)],
      },
      metadataProps: Object.entries(opts.metadata).map(([key, value]) => ({ key, value })),
    };
    return onnx.ModelProto.encode(model).finish();
  }

  /** Tensor names must be unique in a graph; a clash gets a numeric suffix. */
  private unique(name: string): string {
    let candidate = name;
    for (let i = 1; this.used.has(candidate); i++) candidate = `${name}_${i}`;
    this.used.add(candidate);
    return candidate;
  }
}

/** Decodes a serialised ModelProto (tests and readers of model.onnx). */
export function decodeOnnxModel(bytes: Uint8Array): OnnxTypes.ModelProto {
  return onnx.ModelProto.decode(bytes);
}
