// Reading what a facepipe model.onnx says about itself, and the names of its input and output: the light half of
// the ONNX module (no TensorFlow.js), so `facepipe embed` / `verify` start fast on onnxruntime.
import { readFile } from 'node:fs/promises';
import type { BackboneConfig } from '../../types.js';
import { decodeOnnxModel, ONNX_OPSET } from './proto.js';

export const ONNX_FILE = 'model.onnx';
export const ONNX_INPUT_NAME = 'image';
export const ONNX_OUTPUT_NAME = 'embedding';

/** What model.onnx says about itself (metadata_props, all strings). */
export interface OnnxModelInfo {
  input_name: string;
  input_layout: 'NHWC';
  input_shape: string;
  input_color: string;
  input_scale: string;
  input_resize: string;
  output_name: string;
  output_shape: string;
  distance: string;
  input_size: number;
  embedding_dim: number;
  num_params: number;
  backbone: BackboneConfig;
}

/** The metadata of a facepipe model.onnx; a clear error for a file facepipe did not write. */
export async function readOnnxModelInfo(file: string): Promise<OnnxModelInfo & { opset: number }> {
  let model: ReturnType<typeof decodeOnnxModel>;
  try {
    model = decodeOnnxModel(await readFile(file));
  } catch (err) {
    throw new Error(`${file}: cannot read ONNX model (${(err as Error).message.split('\n')[0]})`, { cause: err });
  }
  const meta: Record<string, string> = {};
  for (const { key, value } of model.metadataProps) if (key) meta[key] = value ?? '';
  const missing = ['input_name', 'input_layout', 'input_size', 'embedding_dim', 'backbone'].filter((k) => !(k in meta));
  if (missing.length)
    throw new Error(
      `${file}: not a facepipe ONNX model (metadata lacks ${missing.join(', ')}); write it with the prune stage`,
    );
  const opset = model.opsetImport.find((o) => !o.domain)?.version;
  return {
    ...(meta as unknown as OnnxModelInfo),
    input_size: Number(meta.input_size),
    embedding_dim: Number(meta.embedding_dim),
    num_params: Number(meta.num_params),
    backbone: JSON.parse(meta.backbone) as BackboneConfig,
    opset: Number(opset ?? ONNX_OPSET),
  };
}
