// Embedding of image files and pair distances, shared by validation during training and the evaluate stage.
import { join } from 'node:path';
import type * as tfTypes from '@tensorflow/tfjs-core';
import { ImageCache } from '../data/cache.js';
import { rgb8ToFloat } from '../data/image.js';
import { pairDistances } from './metrics.js';

/** Anything with an inference-mode embedding: EmbeddingNet / TriarchyNet. */
export interface Embedder {
  embed(x: tfTypes.Tensor4D, batchSize?: number): tfTypes.Tensor2D;
}

/** An embedder outside TF.js (onnxruntime): n images [n, S, S, 3] in [0, 1] -> [n, dim] row-major. */
export interface ArrayEmbedder {
  embedArray(data: Float32Array, n: number): Promise<{ dim: number; values: Float32Array }>;
}

/** The same images mirrored along the width axis (what tf.reverse(x, 2) gives for NHWC). */
export function mirrorNhwc(data: Float32Array, n: number, size: number): Float32Array {
  const out = new Float32Array(data.length);
  // Plain indexing: a subarray view per pixel costs more than the copy itself.
  for (let row = 0; row < n * size; row++) {
    const base = row * size * 3;
    for (let x = 0; x < size; x++) {
      const from = base + x * 3;
      const to = base + (size - 1 - x) * 3;
      out[to] = data[from];
      out[to + 1] = data[from + 1];
      out[to + 2] = data[from + 2];
    }
  }
  return out;
}

async function embedBatch(
  net: Embedder | ArrayEmbedder,
  data: Float32Array,
  n: number,
  opts: EmbedOptions,
): Promise<{ dim: number; values: Float32Array }> {
  if ('embedArray' in net) {
    const e = await net.embedArray(data, n);
    if (!opts.flipAverage) return e;
    const m = await net.embedArray(mirrorNhwc(data, n, opts.inputSize), n);
    // (a + b) / 2 in float32, as the TF.js path computes it.
    const values = e.values.map((v, i) => Math.fround(Math.fround(v + m.values[i]) / 2));
    return { dim: e.dim, values };
  }
  // Loaded here, not at the top: an ArrayEmbedder (onnxruntime) needs no TF.js (facepipe embed / verify start fast).
  const tf = await import('@tensorflow/tfjs-core');
  const emb = tf.tidy(() => {
    const x = tf.tensor4d(data, [n, opts.inputSize, opts.inputSize, 3]);
    const e = net.embed(x, opts.batchSize);
    if (!opts.flipAverage) return e;
    // Mirror along the width axis (axis 2 of NHWC).
    return tf.div<tfTypes.Tensor2D>(tf.add(e, net.embed(tf.reverse(x, 2), opts.batchSize)), 2);
  });
  const values = (await emb.data()) as Float32Array;
  const dim = emb.shape[1];
  emb.dispose();
  return { dim, values };
}

/** Embeds many files itself, e.g. a pool of worker threads (src/ml/train/parallel/pool.ts). */
export interface FileEmbedder {
  embedFiles(root: string, files: string[], opts: EmbedOptions): Promise<{ dim: number; rows: Float32Array[] }>;
}

export interface EmbedOptions {
  /** Square input side the images are resized to. */
  inputSize: number;
  /** Images per forward pass. */
  batchSize: number;
  /** Average the embeddings of each image and its mirror image. */
  flipAverage?: boolean;
  cache?: ImageCache;
  signal?: AbortSignal;
}

/** Embeddings of `files` (relative to `root`), one Float32Array row each, in order. */
export async function embedFiles(
  net: Embedder | ArrayEmbedder,
  root: string,
  files: string[],
  opts: EmbedOptions,
): Promise<{ dim: number; rows: Float32Array[] }> {
  const cache = opts.cache ?? new ImageCache();
  const size = { width: opts.inputSize, height: opts.inputSize };
  const per = opts.inputSize * opts.inputSize * 3;
  const rows: Float32Array[] = [];
  let dim = 0;
  for (let start = 0; start < files.length; start += opts.batchSize) {
    if (opts.signal?.aborted) throw new Error('embedding aborted');
    const chunk = files.slice(start, start + opts.batchSize);
    const data = new Float32Array(chunk.length * per);
    const images = await Promise.all(chunk.map((f) => cache.get(join(root, f), size)));
    images.forEach((img, i) => rgb8ToFloat(img, data, i * per));
    const batch = await embedBatch(net, data, chunk.length, opts);
    const values = batch.values;
    dim = batch.dim;
    for (let i = 0; i < chunk.length; i++) rows.push(values.slice(i * dim, (i + 1) * dim));
  }
  return { dim, rows };
}

export interface PairLike {
  image1: string;
  image2: string;
}

/** Distances of the pairs, embedding every distinct image once. */
export async function pairSetDistances(
  net: Embedder | ArrayEmbedder | FileEmbedder,
  root: string,
  pairs: PairLike[],
  opts: EmbedOptions,
): Promise<Float64Array> {
  const files = [...new Set(pairs.flatMap((p) => [p.image1, p.image2]))].sort();
  const { dim, rows } =
    'embedFiles' in net ? await net.embedFiles(root, files, opts) : await embedFiles(net, root, files, opts);
  const index = new Map(files.map((f, i) => [f, i]));
  const a = new Float32Array(pairs.length * dim);
  const b = new Float32Array(pairs.length * dim);
  pairs.forEach((p, i) => {
    a.set(rows[index.get(p.image1)!], i * dim);
    b.set(rows[index.get(p.image2)!], i * dim);
  });
  return pairDistances(a, b, dim);
}
