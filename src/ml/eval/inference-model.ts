// What embeds images with an inference model folder (the prune stage's output): its model.onnx on onnxruntime-node,
// or its TF.js model on a TensorFlow.js backend. Both compute the same function (a test holds them to 1e-4). Used
// by the evaluate stage and by `facepipe embed` / `verify`.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ArrayEmbedder, Embedder } from './embed.js';
import { ONNX_FILE, readOnnxModelInfo } from '../export/onnx/info.js';
import { EVALUATE_ORT_OPTIONS, OnnxEmbedder, onnxRuntimeStatus, ORT_HOW_TO_GET } from '../export/onnx/runtime.js';
import type { BackendPreference } from '../types.js';

export type Runtime = 'onnx' | 'tfjs';

export interface EvalModel {
  embedder: Embedder | ArrayEmbedder;
  runtime: Runtime;
  /** 'onnxruntime-node 1.30.0 (cpu)', 'TensorFlow.js wasm' */
  detail: string;
  /** The TF.js backend, when TF.js embeds. */
  backend?: string;
  /** Its WebGPU adapter, on webgpu. */
  adapter?: string;
  numParams: number;
  embeddingDim: number;
  inputSize: number;
  dispose(): Promise<void> | void;
}

/**
 * Opens the model for `requested` (undefined: onnx when onnxruntime-node and model.onnx are there). `setting` names
 * where the runtime was asked for, for the error when it cannot be had.
 */
export async function openEvalModel(
  dir: string,
  requested: Runtime | undefined,
  backendPref: string,
  log: (line: string) => void,
  setting = 'evaluate.runtime',
  /** onnxruntime's intra-op threads (e.g. the cores a stage may use); default: its own choice. */
  threads?: number,
): Promise<EvalModel> {
  const onnxFile = join(dir, ONNX_FILE);
  let runtime = requested;
  if (runtime !== 'tfjs') {
    const ort = await onnxRuntimeStatus();
    const why = !ort.available ? ort.detail : !existsSync(onnxFile) ? `${onnxFile} does not exist` : undefined;
    if (why && runtime === 'onnx')
      throw new Error(
        `${setting} is onnx but ${why}; ${ort.available ? 'rerun prune (it writes model.onnx)' : ORT_HOW_TO_GET}, or set ${setting}: tfjs`,
      );
    if (why) log(`embedding with TF.js: ${why}`);
    runtime = why ? 'tfjs' : 'onnx';
    if (runtime === 'onnx') {
      const info = await readOnnxModelInfo(onnxFile);
      const embedder = await OnnxEmbedder.load(onnxFile, info.input_size, {
        ...EVALUATE_ORT_OPTIONS,
        ...(threads ? { threads } : {}),
      });
      return {
        embedder,
        runtime,
        detail: `${ort.detail} (${embedder.providers.join(', ')})`,
        numParams: info.num_params,
        embeddingDim: info.embedding_dim,
        inputSize: info.input_size,
        dispose: () => embedder.dispose(),
      };
    }
  }
  // TF.js only when it embeds: onnxruntime alone starts several times faster (facepipe embed / verify).
  const { initBackend } = await import('../backend/select.js');
  const { loadInferenceModel } = await import('../model/index.js');
  const backend = await initBackend(backendPref as BackendPreference);
  const model = await loadInferenceModel(dir);
  return {
    embedder: model,
    runtime: 'tfjs',
    detail: `TensorFlow.js ${backend.name}`,
    backend: backend.name,
    adapter: backend.adapter,
    numParams: model.numParams,
    embeddingDim: model.embeddingDim,
    inputSize: model.backbone.inputSize,
    dispose: () => model.dispose(),
  };
}
