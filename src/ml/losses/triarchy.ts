// The Triarchy losses (recipe §3.2): label-smoothed identity cross-entropy, batch-hard triplet on raw
// euclidean distances (soft margin by default), and a center loss whose centres are trained by the
// same optimiser. Everything is differentiable with ops every backend has: the centre lookup is a
// one-hot matmul because the gradient of gather needs UnsortedSegmentSum, which wasm lacks.
import * as tf from '@tensorflow/tfjs-core';
import '../train/gradients.js';

/** Per-sample label-smoothed CE, batch mean: t = (1-eps)*onehot + eps/C; mean_b sum_c -t*log_softmax(z). eps 0 = plain CE. */
export function labelSmoothedCrossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, epsilon = 0.1): tf.Scalar {
  return tf.tidy(() => {
    const c = logits.shape[1];
    const target = tf.add(tf.mul(tf.oneHot(tf.cast(labels, 'int32'), c), 1 - epsilon), epsilon / c);
    return tf.mean(tf.sum(tf.mul(tf.neg(target), tf.logSoftmax(logits)), 1));
  });
}

/** Plain softmax cross-entropy, batch mean (the pretext heads). */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return labelSmoothedCrossEntropy(logits, labels, 0);
}

/** Pairwise euclidean distances sqrt(clamp(|x|^2 + |y|^2 - 2 x.y, 1e-12)), [N, M]. */
export function euclideanDistances(x: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const xx = tf.sum(tf.square(x), 1, true); // [N, 1]
    const yy = tf.reshape(tf.sum(tf.square(y), 1), [1, -1]); // [1, M]
    // Explicit transpose: wasm's matMul with transposeB is many times slower.
    const xy = tf.matMul(x, tf.transpose(y));
    return tf.sqrt(tf.maximum(tf.sub(tf.add(xx, yy), tf.mul(xy, 2)), 1e-12)) as tf.Tensor2D;
  });
}

export interface TripletConfig {
  /** Hinge margin: max(0, d_ap - d_an + margin). Unset/null = soft margin log(1 + exp(d_ap - d_an)) (the recipe). */
  margin?: number | null;
}

/**
 * Batch-hard triplet loss: for each anchor the farthest positive (itself included, as the original)
 * and the nearest negative, on raw (unnormalised) euclidean distances; batch mean.
 * Anchors with no negative in the batch would make the loss meaningless, so that is an error.
 */
export function batchHardTriplet(embedding: tf.Tensor2D, labels: tf.Tensor1D, cfg: TripletConfig = {}): tf.Scalar {
  return tf.tidy(() => {
    const dist = euclideanDistances(embedding, embedding);
    const l = tf.cast(labels, 'int32');
    const same = tf.equal(tf.reshape(l, [-1, 1]), tf.reshape(l, [1, -1]));
    const big = tf.fill(dist.shape, 1e30);
    const dAp = tf.max(tf.where(same, dist, tf.neg(big)), 1);
    const dAn = tf.min(tf.where(same, big, dist), 1);
    const diff = tf.sub(dAp, dAn);
    const per = cfg.margin === undefined || cfg.margin === null ? tf.softplus(diff) : tf.relu(tf.add(diff, cfg.margin));
    return tf.mean(per);
  });
}

/** mean_b sum_d (f_b - C[y_b])^2 (no 1/2, batch mean). Gradients reach both features and centres. */
export function centerLoss(embedding: tf.Tensor2D, labels: tf.Tensor1D, centers: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const onehot = tf.cast(tf.oneHot(tf.cast(labels, 'int32'), centers.shape[0]), 'float32');
    const c = tf.matMul(onehot, centers);
    return tf.mean(tf.sum(tf.square(tf.sub(embedding, c)), 1));
  });
}

export interface TriarchyLossConfig {
  /** Label smoothing epsilon (default 0.1). */
  epsilon?: number;
  /** Triplet hinge margin; unset/null = soft margin (default). */
  margin?: number | null;
  /** Term weights (default 1 each). */
  weights?: { id?: number; tri?: number; ctr?: number };
}

export interface LossResult {
  total: tf.Scalar;
  /** Unweighted terms, for progress lines. */
  parts: Record<string, tf.Scalar>;
}

/** total = w_id*id + w_tri*tri + w_ctr*ctr; parts { id, tri, ctr } are the unweighted terms. */
export function triarchyLoss(
  out: { embedding: tf.Tensor; logits: tf.Tensor },
  labels: tf.Tensor1D,
  centers: tf.Tensor2D,
  cfg: TriarchyLossConfig = {},
): LossResult {
  const w = { id: 1, tri: 1, ctr: 1, ...cfg.weights };
  const emb = out.embedding as tf.Tensor2D;
  const id = labelSmoothedCrossEntropy(out.logits as tf.Tensor2D, labels, cfg.epsilon ?? 0.1);
  const tri = batchHardTriplet(emb, labels, { margin: cfg.margin });
  const ctr = centerLoss(emb, labels, centers);
  const total = tf.tidy(() => tf.addN([tf.mul(id, w.id), tf.mul(tri, w.tri), tf.mul(ctr, w.ctr)]) as tf.Scalar);
  return { total, parts: { id, tri, ctr } };
}
