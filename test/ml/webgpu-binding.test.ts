/// <reference types="@webgpu/types" />
// WebGPU's per-binding limit (maxStorageBufferBindingSize, 128 MiB on lavapipe): a tensor over it fails loudly
// instead of leaving zeros behind; the estimate of the largest tensor per image is exact; and with the planning
// limit lowered to 1 MiB (FACEPIPE_WEBGPU_MAX_BINDING_MIB) fitMicroBatch splits a tiny net's batch, which trains.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { fitMicroBatch, imagesPerBinding } from '../../src/ml/backend/binding-limit.js';
import { initBackend } from '../../src/ml/backend/select.js';
import { triarchyLoss } from '../../src/ml/losses/triarchy.js';
import { createTriarchyNet } from '../../src/ml/model/index.js';
import { Adam } from '../../src/ml/train/adam.js';
import { trainStep } from '../../src/ml/train/trainer.js';
import type { BackboneConfig } from '../../src/ml/types.js';
import { useSoftwareAdapter } from './webgpu-adapter.js';

// Read when the backend first initialises: the planning limit only (the device keeps the adapter's).
process.env.FACEPIPE_WEBGPU_MAX_BINDING_MIB = '1';

const NET: BackboneConfig = { width: 0.25, depth: 0.25, inputSize: 64, bnMomentum: 0.9, dropConnect: 0 };
const net = () => createTriarchyNet({ backbone: NET, embeddingDim: 8, numClasses: 2, seed: 1 });

/** Bytes per image of every kernel output that grows with the batch, from cpu runs at batch 2 and 4. */
async function measuredLargestPerImage(): Promise<number> {
  const n = net();
  const sizes = async (b: number) => {
    const x = tf.randomUniform<tf.Rank.R4>([b, 64, 64, 3]);
    const labels = tf.tensor1d(
      Array.from({ length: b }, (_, i) => i % 2),
      'int32',
    );
    const info = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(
        () => triarchyLoss(n.apply(x, true), labels, n.centers as unknown as tf.Tensor2D).total,
        n.trainableVariables(),
      );
      tf.dispose([value, ...Object.values(grads)]);
    });
    tf.dispose([x, labels]);
    return info.kernels.flatMap((k) => k.outputShapes.map((s) => 4 * s.reduce((p, q) => p * q, 1)));
  };
  const [two, four] = [await sizes(2), await sizes(4)];
  n.dispose();
  assert.equal(two.length, four.length);
  return Math.max(...two.map((s, i) => (four[i] - s) / 2));
}

test('a tensor over the binding limit is an error at the next read, not zeros', async () => {
  await useSoftwareAdapter();
  const limit = (tf.backend() as unknown as { device: GPUDevice }).device.limits.maxStorageBufferBindingSize;
  const big = tf.fill([limit / 4 + 1024], 1.5);
  const y = tf.add(big, 1);
  await assert.rejects(y.data(), /WebGPU device error: .*(binding|size)/i);
  tf.dispose([big, y]);
  // The device still works afterwards.
  const ok = tf.add(tf.ones([4]), 1);
  assert.deepEqual([...(await ok.data())], [2, 2, 2, 2]);
  ok.dispose();
});

test('the largest tensor per image is estimated exactly; batches split to the binding limit train', async () => {
  await initBackend('cpu');
  const probe = net();
  const estimate = probe.largestTensorBytesPerImage();
  probe.dispose();
  assert.equal(estimate, await measuredLargestPerImage());
  assert.equal(imagesPerBinding({ largestTensorBytesPerImage: () => estimate }), undefined, 'no cap off webgpu');

  await useSoftwareAdapter();
  const n = net();
  const batch = 16;
  const cap = imagesPerBinding(n)!;
  assert.equal(cap, Math.floor(2 ** 20 / estimate));
  assert.ok(cap < batch, `cap ${cap}`);
  const lines: string[] = [];
  assert.equal(
    fitMicroBatch(undefined, batch, n, (l) => lines.push(l)),
    cap,
  );
  assert.match(lines[0], /micro-batches of \d+ images/);
  assert.equal(fitMicroBatch(2, batch, n), 2, 'a smaller requested micro-batch stands');

  const x = tf.randomUniform<tf.Rank.R4>([batch, 64, 64, 3], 0, 1, 'float32', 2);
  const labels = tf.tensor1d(
    Array.from({ length: batch }, (_, i) => i % 2),
    'int32',
  );
  const b = { x, labels: { identity: labels }, indices: [] };
  const loss = (out: Record<string, tf.Tensor>) =>
    triarchyLoss(out as { embedding: tf.Tensor; logits: tf.Tensor }, labels, n.centers as unknown as tf.Tensor2D);
  const adam = new Adam(n.trainableVariables());
  const step = (micro?: number) => trainStep(n, n.trainableVariables(), n.stateVariables(), b, loss, adam, 1e-3, micro);
  const r = await step(cap);
  assert.ok(Number.isFinite(r.loss) && r.loss > 0, `loss ${r.loss}`);
  tf.dispose([x, labels]);
  adam.dispose();
  n.dispose();
});
