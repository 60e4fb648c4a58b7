import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { recalibrateBatchNorm } from '../../src/ml/eval/bn-recalibrate.js';

test('recalibrateBatchNorm sets moving statistics to the average of the batch statistics', async () => {
  await tf.setBackend('cpu');
  const m = 0.99;
  const mean = tf.variable(tf.tensor1d([5]), false, 'bnr/moving_mean');
  const variance = tf.variable(tf.tensor1d([7]), false, 'bnr/moving_variance');
  const other = tf.variable(tf.tensor1d([3]), true, 'bnr/gamma');
  // A one-channel "BN" updating its moving stats like the real one: moving = m * moving + (1 - m) * batch.
  const net = {
    namedVariables: () =>
      new Map([
        ['bn/moving_mean', mean],
        ['bn/moving_variance', variance],
        ['bn/gamma', other],
      ]),
    apply: (x: tf.Tensor4D) => {
      const { mean: bm, variance: bv } = tf.moments(x);
      mean.assign(tf.reshape(tf.add(tf.mul(mean, m), tf.mul(bm, 1 - m)), [1]));
      variance.assign(tf.reshape(tf.add(tf.mul(variance, m), tf.mul(bv, 1 - m)), [1]));
      return {};
    },
  };
  // Batches with means 1, 2, 6 and variances 0, 1, 4.
  const batches = [
    tf.tensor4d([1, 1], [2, 1, 1, 1]),
    tf.tensor4d([1, 3], [2, 1, 1, 1]),
    tf.tensor4d([4, 8], [2, 1, 1, 1]),
  ];
  const n = await recalibrateBatchNorm(net, batches, () => m);
  assert.equal(n, 3);
  assert.ok(Math.abs(mean.dataSync()[0] - 3) < 1e-4, `mean ${mean.dataSync()[0]}`);
  assert.ok(Math.abs(variance.dataSync()[0] - 5 / 3) < 1e-4, `variance ${variance.dataSync()[0]}`);
  assert.equal(other.dataSync()[0], 3, 'trainable variables are untouched');
  assert.ok(
    batches.every((b) => b.isDisposed),
    'batches are disposed',
  );
});
