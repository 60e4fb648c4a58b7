// Checks a written model.onnx against the TF.js net it came from, on seeded random images.
import * as tf from '@tensorflow/tfjs-core';
import type { EmbeddingNet } from '../../model/triarchy.js';
import { OnnxEmbedder, onnxRuntimeStatus } from './runtime.js';

export interface OnnxCheck {
  /** Max |TF.js - onnxruntime| over the embeddings. */
  maxAbsDiff: number;
  /** Max |embedding value| (the scale the difference is relative to). */
  maxAbs: number;
}

/** undefined when onnxruntime-node is not installed (nothing to check with). */
export async function checkOnnxAgainstTfjs(net: EmbeddingNet, file: string, n = 4): Promise<OnnxCheck | undefined> {
  if (!(await onnxRuntimeStatus()).available) return undefined;
  const size = net.backbone.config.inputSize;
  const x = tf.randomUniform<tf.Rank.R4>([n, size, size, 3], 0, 1, 'float32', 1);
  const e = net.embed(x);
  const ort = await OnnxEmbedder.load(file, size);
  try {
    const expected = (await e.data()) as Float32Array;
    const got = (await ort.embedArray((await x.data()) as Float32Array, n)).values;
    let maxAbsDiff = 0;
    let maxAbs = 0;
    for (let i = 0; i < expected.length; i++) {
      maxAbsDiff = Math.max(maxAbsDiff, Math.abs(expected[i] - got[i]));
      maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
    }
    return { maxAbsDiff, maxAbs };
  } finally {
    tf.dispose([x, e]);
    await ort.dispose();
  }
}
