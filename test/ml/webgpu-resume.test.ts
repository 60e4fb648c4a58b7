// Checkpoints and models are backend-neutral: training interrupted on webgpu resumes on wasm (weights, Adam
// moments and history restored exactly) and the other way round; a model saved on webgpu loads on wasm and
// embeds the same. Runs on the software adapter (webgpu-adapter.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/ml/backend/select.js';
import { triarchyLoss } from '../../src/ml/losses/triarchy.js';
import { createTriarchyNet, loadNet, saveNet, type TriarchyNet } from '../../src/ml/model/index.js';
import { trainNet, type TrainBatch } from '../../src/ml/train/trainer.js';
import { useSoftwareAdapter } from './webgpu-adapter.js';

const makeNet = () =>
  createTriarchyNet({
    backbone: { width: 0.1, depth: 0.1, inputSize: 32, bnMomentum: 0.9, dropConnect: 0.2 },
    embeddingDim: 8,
    numClasses: 3,
    seed: 4,
  });

/** Two fixed batches per epoch, seeded by the epoch. */
function* batches(epoch: number): Iterable<TrainBatch> {
  for (let i = 0; i < 2; i++)
    yield {
      x: tf.randomUniform<tf.Rank.R4>([6, 32, 32, 3], 0, 1, 'float32', 100 * epoch + i),
      labels: { identity: tf.tensor1d([0, 0, 1, 1, 2, 2], 'int32') },
      indices: [],
    };
}

async function train(net: TriarchyNet, epochs: number, checkpointDir: string) {
  return trainNet({
    net,
    batches,
    loss: (out, b) =>
      triarchyLoss(
        out as { embedding: tf.Tensor; logits: tf.Tensor },
        b.labels.identity,
        net.centers as unknown as tf.Tensor2D,
      ),
    epochs,
    lr: 1e-3,
    seed: 7,
    checkpointDir,
  });
}

const snapshot = (net: TriarchyNet) =>
  Promise.all([...net.namedVariables()].map(async ([name, v]) => [name, Array.from(await v.data())] as const));

test('a checkpoint made on webgpu resumes on wasm, and one made on wasm resumes on webgpu', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fp-webgpu-resume-'));
  try {
    await useSoftwareAdapter();
    let net = makeNet();
    const first = await train(net, 1, dir);
    assert.equal(first.resumedFrom, 0);
    const afterWebGpu = await snapshot(net);
    net.dispose();

    await initBackend('wasm');
    net = makeNet();
    const restored = await train(net, 1, dir); // nothing left to train: the checkpoint is loaded as is
    assert.equal(restored.resumedFrom, 1);
    assert.deepEqual(await snapshot(net), afterWebGpu, 'weights and BN statistics restored exactly');
    const second = await train(net, 2, dir);
    assert.equal(second.resumedFrom, 1);
    assert.deepEqual(
      second.history.map((h) => h.epoch),
      [1, 2],
    );
    assert.ok(Number.isFinite(second.history[1].loss));
    assert.equal(second.steps, 4, 'Adam step count carried over');
    const afterWasm = await snapshot(net);
    net.dispose();

    await useSoftwareAdapter();
    net = makeNet();
    assert.equal((await train(net, 2, dir)).resumedFrom, 2);
    assert.deepEqual(await snapshot(net), afterWasm, 'restored exactly on webgpu');
    const back = await train(net, 3, dir);
    assert.equal(back.resumedFrom, 2);
    assert.equal(back.steps, 6);
    assert.ok(Number.isFinite(back.history[2].loss));
    net.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a model saved on webgpu loads on wasm and gives the same embeddings', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fp-webgpu-model-'));
  try {
    await useSoftwareAdapter();
    const net = makeNet();
    const x = tf.randomUniform<tf.Rank.R4>([4, 32, 32, 3], 0, 1, 'float32', 3);
    const e = net.embed(x);
    const onWebGpu = await e.data();
    tf.dispose([x, e]);
    await saveNet(net, dir);
    net.dispose();

    await initBackend('wasm');
    const loaded = await loadNet(dir);
    assert.ok('embed' in loaded);
    const x2 = tf.randomUniform<tf.Rank.R4>([4, 32, 32, 3], 0, 1, 'float32', 3);
    const e2 = loaded.embed(x2);
    const onWasm = await e2.data();
    for (let i = 0; i < onWasm.length; i++)
      assert.ok(Math.abs(onWasm[i] - onWebGpu[i]) <= 1e-4 * (1 + Math.abs(onWasm[i])), `embedding ${i}`);
    tf.dispose([x2, e2]);
    loaded.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
