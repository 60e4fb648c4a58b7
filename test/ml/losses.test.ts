import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import {
  batchHardTriplet,
  centerLoss,
  euclideanDistances,
  labelSmoothedCrossEntropy,
  triarchyLoss,
} from '../../src/ml/losses/triarchy.js';

await tf.setBackend('cpu');

const close = (a: number, b: number, tol = 1e-5, what = '') =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
const closeAll = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5, what = '') => {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) close(a[i], b[i], tol, `${what}[${i}]`);
};
const softplus = (v: number) => Math.log(1 + Math.exp(v));
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

test('label-smoothed CE: uniform logits give log C for any epsilon', () => {
  const logits = tf.zeros([2, 4]) as tf.Tensor2D;
  const labels = tf.tensor1d([0, 3], 'int32');
  close(labelSmoothedCrossEntropy(logits, labels, 0.1).dataSync()[0], Math.log(4));
  close(labelSmoothedCrossEntropy(logits, labels, 0).dataSync()[0], Math.log(4));
});

test('label-smoothed CE and its gradient match the formula by hand', () => {
  const z = [
    [1, 2, 0],
    [0.5, -1, 3],
  ];
  const y = [1, 2];
  const eps = 0.1;
  const C = 3;
  // By hand: t = 0.9*onehot + 0.1/3; loss = mean_b sum_c -t log softmax; dL/dz = (softmax - t) / B.
  let expected = 0;
  const expectedGrad: number[] = [];
  z.forEach((row, b) => {
    const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
    row.forEach((v, c) => {
      const t = (c === y[b] ? 1 - eps : 0) + eps / C;
      expected += (-t * (v - lse)) / z.length;
      expectedGrad.push((Math.exp(v - lse) - t) / z.length);
    });
  });
  const labels = tf.tensor1d(y, 'int32');
  const f = (l: tf.Tensor) => labelSmoothedCrossEntropy(l as tf.Tensor2D, labels, eps);
  close(f(tf.tensor2d(z)).dataSync()[0], expected, 1e-6, 'loss');
  closeAll(tf.grad(f)(tf.tensor2d(z)).dataSync(), expectedGrad, 1e-5, 'grad');
});

// 4 points in 2-D, labels [0,0,1,1]; the distances are easy by hand:
// d01 = 5, d02 = 1, d03 = 2, d12 = sqrt 20, d13 = sqrt 13, d23 = sqrt 5.
const pts = [
  [0, 0],
  [3, 4],
  [1, 0],
  [0, 2],
];
const lab = [0, 0, 1, 1];
// Hardest positive / negative of each anchor (by hand): (ap, an) index pairs.
const hard = [
  [1, 2], // d_ap 5, d_an 1
  [0, 3], // 5, sqrt13
  [3, 0], // sqrt5, 1
  [2, 0], // sqrt5, 2
];
const d = (i: number, j: number) => Math.hypot(pts[i][0] - pts[j][0], pts[i][1] - pts[j][1]);

test('euclidean distances: hand values and the 1e-12 clamp on the diagonal', () => {
  const D = euclideanDistances(tf.tensor2d(pts), tf.tensor2d(pts)).arraySync();
  close(D[0][1], 5);
  close(D[1][2], Math.sqrt(20));
  close(D[2][3], Math.sqrt(5));
  assert.ok(D[0][0] <= 1.01e-6 && D[0][0] > 0, `diag ${D[0][0]}`); // sqrt(1e-12)
});

/** Expected loss and gradient w.r.t. the points for a per-anchor function h(diff) with derivative h'. */
function tripletByHand(h: (v: number) => number, dh: (v: number) => number) {
  let loss = 0;
  const grad = pts.map(() => [0, 0]);
  const n = pts.length;
  const addDistGrad = (i: number, j: number, w: number) => {
    const dij = d(i, j);
    for (let k = 0; k < 2; k++) {
      const g = (w * (pts[i][k] - pts[j][k])) / dij;
      grad[i][k] += g;
      grad[j][k] -= g;
    }
  };
  hard.forEach(([p, q], a) => {
    const diff = d(a, p) - d(a, q);
    loss += h(diff) / n;
    addDistGrad(a, p, dh(diff) / n);
    addDistGrad(a, q, -dh(diff) / n);
  });
  return { loss, grad: grad.flat() };
}

test('batch-hard triplet, soft margin: value and gradient by hand', () => {
  const exp = tripletByHand(softplus, sigmoid);
  // Sanity of the hand figures: diffs 4, 5-sqrt13, sqrt5-1, sqrt5-2.
  close(
    exp.loss,
    (softplus(4) + softplus(5 - Math.sqrt(13)) + softplus(Math.sqrt(5) - 1) + softplus(Math.sqrt(5) - 2)) / 4,
    1e-12,
  );
  const labels = tf.tensor1d(lab, 'int32');
  const f = (x: tf.Tensor) => batchHardTriplet(x as tf.Tensor2D, labels);
  close(f(tf.tensor2d(pts)).dataSync()[0], exp.loss, 1e-5, 'loss');
  closeAll(tf.grad(f)(tf.tensor2d(pts)).dataSync(), exp.grad, 1e-4, 'grad');
});

test('batch-hard triplet, hinge margin 0.3: value and gradient by hand', () => {
  const m = 0.3;
  const exp = tripletByHand(
    (v) => Math.max(0, v + m),
    (v) => (v + m > 0 ? 1 : 0),
  );
  close(exp.loss, (4.3 + (5.3 - Math.sqrt(13)) + (Math.sqrt(5) - 0.7) + (Math.sqrt(5) - 1.7)) / 4, 1e-12);
  const labels = tf.tensor1d(lab, 'int32');
  const f = (x: tf.Tensor) => batchHardTriplet(x as tf.Tensor2D, labels, { margin: m });
  close(f(tf.tensor2d(pts)).dataSync()[0], exp.loss, 1e-5, 'loss');
  closeAll(tf.grad(f)(tf.tensor2d(pts)).dataSync(), exp.grad, 1e-4, 'grad');
  // A margin the batch already satisfies gives zero loss: anchor 0 would need d_an - d_ap >= -m ... use large separation.
  const far = tf.tensor2d([
    [0, 0],
    [0, 1],
    [100, 0],
    [100, 1],
  ]);
  assert.equal(batchHardTriplet(far, labels, { margin: 1 }).dataSync()[0], 0);
});

test('center loss: mean of squared distances (no 1/2) and gradients to features and centres', () => {
  const f = [
    [1, 2],
    [0, -1],
    [3, 3],
  ];
  const c = [
    [0, 0],
    [1, 1],
  ];
  const y = [0, 1, 0];
  // By hand: |(1,2)|^2 = 5, |(-1,-2)|^2 = 5, |(3,3)|^2 = 18 -> (5+5+18)/3.
  const expected = 28 / 3;
  const labels = tf.tensor1d(y, 'int32');
  const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => centerLoss(a as tf.Tensor2D, labels, b as tf.Tensor2D));
  close(centerLoss(tf.tensor2d(f), labels, tf.tensor2d(c)).dataSync()[0], expected, 1e-6);
  const [gf, gc] = g([tf.tensor2d(f), tf.tensor2d(c)]);
  // dL/df_b = 2 (f_b - c_yb) / B ; dL/dc_k = -2 sum_{y_b = k} (f_b - c_k) / B
  closeAll(gf.dataSync(), [2 / 3, 4 / 3, -2 / 3, -4 / 3, 2, 2], 1e-6, 'grad f');
  closeAll(gc.dataSync(), [(-2 * (1 + 3)) / 3, (-2 * (2 + 3)) / 3, (-2 * -1) / 3, (-2 * -2) / 3], 1e-6, 'grad c');
});

test('triarchyLoss: weighted total and unweighted parts', () => {
  const emb = tf.tensor2d(pts);
  const logits = tf.tensor2d([
    [1, 0],
    [2, 1],
    [0, 1],
    [-1, 1],
  ]);
  const labels = tf.tensor1d(lab, 'int32');
  const centers = tf.tensor2d([
    [1, 1],
    [0, 1],
  ]);
  const r = triarchyLoss({ embedding: emb, logits }, labels, centers, { weights: { id: 2, tri: 0.5, ctr: 0 } });
  const id = labelSmoothedCrossEntropy(logits, labels, 0.1).dataSync()[0];
  const tri = batchHardTriplet(emb, labels).dataSync()[0];
  const ctr = centerLoss(emb, labels, centers).dataSync()[0];
  close(r.parts.id.dataSync()[0], id);
  close(r.parts.tri.dataSync()[0], tri);
  close(r.parts.ctr.dataSync()[0], ctr);
  close(r.total.dataSync()[0], 2 * id + 0.5 * tri);
  const def = triarchyLoss({ embedding: emb, logits }, labels, centers);
  close(def.total.dataSync()[0], id + tri + ctr);
});
