// model.onnx: the inference graph of an EmbeddingNet for onnxruntime (or any ONNX runtime), with what a consumer
// must know to feed it (layout, colour order, scaling, resize) in the model's metadata_props.
import { rename, writeFile } from 'node:fs/promises';
import type * as tf from '@tensorflow/tfjs-core';
import { countParams } from '../../model/io.js';
import type { EmbeddingNet } from '../../model/triarchy.js';
import type { BackboneConfig } from '../../types.js';
import { embeddingGraph, type Weights } from './efficientnet-graph.js';
import { ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from './info.js';

export { samePadding } from './efficientnet-graph.js';
export { ONNX_FILE, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME, readOnnxModelInfo, type OnnxModelInfo } from './info.js';
export { ONNX_OPSET, ONNX_IR_VERSION, decodeOnnxModel } from './proto.js';
/** Version of facepipe's ONNX writer (bump when the graph it writes changes). */
export const ONNX_WRITER_VERSION = '1';

function metadata(config: BackboneConfig, dim: number, numParams: number): Record<string, string> {
  const s = config.inputSize;
  return {
    input_name: ONNX_INPUT_NAME,
    input_layout: 'NHWC',
    input_shape: `[N, ${s}, ${s}, 3]`,
    input_color: 'RGB (grey images repeated to 3 channels)',
    input_scale: '1/255: float32 = uint8 value / 255, range [0, 1]; no mean or std normalisation',
    input_resize: `stretch to ${s}x${s} (no crop), bilinear`,
    output_name: ONNX_OUTPUT_NAME,
    output_shape: `[N, ${dim}]`,
    distance: 'euclidean between raw embeddings (not L2-normalised); larger = more likely different people',
    input_size: String(s),
    embedding_dim: String(dim),
    num_params: String(numParams),
    backbone: JSON.stringify(config),
  };
}

const INFERENCE_PARAM = /^(backbone|embedding)\//;

/** Reads every backbone and embedding variable (async: works on any TF.js backend). */
async function readWeights(net: EmbeddingNet): Promise<Weights> {
  const out: Weights = new Map();
  for (const [name, v] of net.namedVariables()) {
    if (!INFERENCE_PARAM.test(name)) continue;
    out.set(name, { shape: [...v.shape], data: (await (v as tf.Tensor).data()) as Float32Array });
  }
  return out;
}

/** Serialised ONNX model of the net's inference graph. */
export async function onnxModelBytes(net: EmbeddingNet): Promise<Uint8Array> {
  const config = net.backbone.config;
  // A TriarchyNet also holds the identity head and centres: count what the graph holds.
  const numParams = countParams(
    [...net.namedVariables()].filter(([n, v]) => v.trainable && INFERENCE_PARAM.test(n)).map(([, v]) => v),
  );
  return embeddingGraph(config, await readWeights(net), {
    metadata: metadata(config, net.embeddingDim, numParams),
    docString:
      `facepipe face-verification embedding: EfficientNet (width ${config.width}, depth ${config.depth}) + Dense(${net.embeddingDim}). ` +
      `Input '${ONNX_INPUT_NAME}' float32 [N, ${config.inputSize}, ${config.inputSize}, 3], NHWC, RGB scaled by 1/255 to [0, 1]; ` +
      `output '${ONNX_OUTPUT_NAME}' [N, ${net.embeddingDim}]; compare embeddings by euclidean distance.`,
    producerVersion: `onnx writer ${ONNX_WRITER_VERSION}`,
  });
}

/** Writes model.onnx atomically (a temp file renamed into place). */
export async function writeOnnxModel(net: EmbeddingNet, file: string): Promise<void> {
  const bytes = await onnxModelBytes(net);
  await writeFile(`${file}.tmp`, bytes);
  await rename(`${file}.tmp`, file);
}
