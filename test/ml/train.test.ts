import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { TrainableNet } from '../../src/ml/types.js';
import {
  AbortError,
  formatEpoch,
  trainNet,
  type BatchProvider,
  type LossFn,
  type TrainBatch,
} from '../../src/ml/train/trainer.js';
import { Adam, multiStepLr } from '../../src/ml/train/adam.js';
import { CHECKPOINT_FILE } from '../../src/ml/train/checkpoint.js';
import { suggestMicroBatch } from '../../src/ml/train/memory.js';
import { triarchyLoss } from '../../src/ml/losses/triarchy.js';
import { randInt } from '../../src/ml/data/rng.js';

await tf.setBackend('cpu');

const SIDE = 4;
const CLASSES = 4;
const EMB = 3;

/** Tiny Triarchy-shaped net: flatten -> dense embedding, logits, class centres, and a BN-like moving mean. */
/**
 * stochastic: a drop-connect-like per-sample mask seeded through setStepSeed. maskChunk: build the mask of a
 * whole batch from chunks of that size seeded as micro-batching seeds them (the reference for that test).
 */
function tinyNet(seed = 1, stochastic = false, maskChunk = 0): TrainableNet & { centers: tf.Variable } {
  let stepSeed = 'unset';
  // tidy disposes the initial-value handles (a variable shares their data).
  const [w1, b1, w2, centers, movingMean] = tf.tidy(() => [
    tf.variable(tf.randomNormal([SIDE * SIDE * 3, EMB], 0, 0.3, 'float32', seed)),
    tf.variable(tf.zeros([EMB])),
    tf.variable(tf.randomNormal([EMB, CLASSES], 0, 0.3, 'float32', seed + 1)),
    tf.variable(tf.randomUniform([CLASSES, EMB], -0.5, 0.5, 'float32', seed + 2)),
    tf.variable(tf.zeros([EMB]), false),
  ]) as [tf.Variable, tf.Variable, tf.Variable, tf.Variable, tf.Variable];
  return {
    centers,
    trainableVariables: () => [w1, b1, w2, centers],
    stateVariables: () => [movingMean],
    apply(x, training) {
      let emb = tf.add(tf.matMul(tf.reshape(x, [x.shape[0], -1]), w1), b1);
      // Drop-connect-like per-sample mask, seeded by the trainer.
      if (training && stochastic) {
        const n = x.shape[0];
        const base = stepSeed.slice(0, stepSeed.lastIndexOf(':'));
        const u = maskChunk
          ? tf.concat(
              Array.from({ length: Math.ceil(n / maskChunk) }, (_, c) =>
                tf.randomUniform([Math.min(maskChunk, n - c * maskChunk), 1], 0, 1, 'float32', `${base}:${c}`),
              ),
            )
          : tf.randomUniform([n, 1], 0, 1, 'float32', stepSeed);
        emb = tf.mul(emb, tf.floor(tf.add(u, 0.7)));
      }
      if (training) movingMean.assign(tf.add(tf.mul(movingMean, 0.9), tf.mul(tf.mean(emb, 0), 0.1)));
      return { embedding: emb, logits: tf.matMul(emb, w2) };
    },
    dispose() {
      for (const v of [w1, b1, w2, centers, movingMean]) v.dispose();
    },
    setStepSeed: stochastic
      ? (s: string) => {
          stepSeed = s;
        }
      : undefined,
  };
}

/** 3 seeded P x K batches per epoch (P=2 classes, K=3): class-dependent mean plus noise. */
const provider: BatchProvider = function* (_epoch, rng) {
  for (let b = 0; b < 3; b++) {
    const labels: number[] = [];
    const first = randInt(rng, CLASSES);
    const second = (first + 1 + randInt(rng, CLASSES - 1)) % CLASSES;
    for (const c of [first, second]) for (let k = 0; k < 3; k++) labels.push(c);
    const x = new Float32Array(labels.length * SIDE * SIDE * 3);
    for (let i = 0; i < x.length; i++) x[i] = labels[Math.floor(i / (SIDE * SIDE * 3))] / CLASSES + 0.2 * rng();
    yield {
      x: tf.tensor4d(x, [labels.length, SIDE, SIDE, 3]),
      labels: { identity: tf.tensor1d(labels, 'int32') },
      indices: [],
    } satisfies TrainBatch;
  }
};

const lossFor =
  (net: { centers: tf.Variable }): LossFn =>
  (out, batch) =>
    triarchyLoss(
      { embedding: out.embedding, logits: out.logits },
      batch.labels.identity,
      net.centers as tf.Tensor as tf.Tensor2D,
    );

const values = (net: TrainableNet) =>
  [...net.trainableVariables(), ...net.stateVariables()].map((v) => Array.from(v.dataSync()));

test('multiStepLr follows MultiStepLR stepped per epoch (the recipe schedule)', () => {
  const lr = (e: number) => multiStepLr(1e-3, e, [30, 80, 120], 0.333);
  assert.equal(lr(1), 1e-3);
  assert.equal(lr(30), 1e-3);
  assert.ok(Math.abs(lr(31) - 3.33e-4) < 1e-12);
  assert.ok(Math.abs(lr(81) - 1.10889e-4) < 1e-12);
  assert.equal(
    formatEpoch({ epoch: 3, epochs: 10, loss: 1.234, parts: { id: 0.9, tri: 0.2, ctr: 0.1 } }),
    'epoch 3/10, loss 1.23 [id 0.900 tri 0.200 ctr 0.100]',
  );
});

test('Adam matches the PyTorch update rule computed by hand', () => {
  const p = tf.variable(tf.scalar(1));
  const adam = new Adam([p]);
  const gs = [2, -1, 0.5];
  let m = 0;
  let v = 0;
  let ref = 1;
  gs.forEach((g, i) => {
    const t = i + 1;
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    ref -= (0.01 / (1 - 0.9 ** t)) * (m / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** t) + 1e-8));
    const gt = tf.scalar(g);
    adam.apply([gt], 0.01);
    gt.dispose();
    assert.ok(Math.abs(p.dataSync()[0] - ref) < 1e-6, `step ${t}: ${p.dataSync()[0]} vs ${ref}`);
  });
  assert.equal(adam.step, 3);
  adam.dispose();
  p.dispose();
});

test('training lowers the loss, reports epochs, and leaks no tensors', async () => {
  const before = tf.memory().numTensors;
  const net = tinyNet();
  const counts: number[] = [];
  const lines: string[] = [];
  const r = await trainNet({
    net,
    batches: provider,
    loss: lossFor(net),
    epochs: 6,
    lr: 0.05,
    onStep: () => counts.push(tf.memory().numTensors),
    onEpoch: (e) => {
      lines.push(formatEpoch(e));
    },
  });
  assert.equal(r.history.length, 6);
  assert.equal(r.steps, 18);
  assert.match(lines[2], /^epoch 3\/6, loss [\d.]+ \[id [\d.]+ tri [\d.]+ ctr [\d.]+\]$/);
  assert.ok(r.history[5].loss < r.history[0].loss, `loss ${r.history[0].loss} -> ${r.history[5].loss}`);
  assert.ok(
    counts.every((c) => c === counts[0]),
    `tensor count grew during training: ${counts}`,
  );
  net.dispose();
  assert.equal(tf.memory().numTensors, before, 'tensors leaked by trainNet (or the test net)');
});

for (const stochastic of [false, true])
  test(`a run killed after epoch 2 resumes to the same weights as an uninterrupted 4-epoch run${stochastic ? ' (seeded random masks)' : ''}`, async () => {
    const opts = { batches: provider, epochs: 4, lr: 0.05, milestones: [3], gamma: 0.5, seed: 11 };
    const straight = tinyNet(1, stochastic);
    const dirA = await mkdtemp(join(tmpdir(), 'ckA-'));
    await trainNet({ ...opts, net: straight, loss: lossFor(straight), checkpointDir: dirA });

    const dirB = await mkdtemp(join(tmpdir(), 'ckB-'));
    const first = tinyNet(1, stochastic);
    await trainNet({ ...opts, epochs: 2, net: first, loss: lossFor(first), checkpointDir: dirB });
    first.dispose();
    assert.deepEqual(await readdir(dirB), [CHECKPOINT_FILE], 'only the checkpoint, no temporary files');

    const resumed = tinyNet(99, stochastic); // different init: everything must come from the checkpoint
    const r = await trainNet({ ...opts, net: resumed, loss: lossFor(resumed), checkpointDir: dirB });
    assert.equal(r.resumedFrom, 2);
    assert.equal(r.history.length, 4);
    assert.equal(r.steps, 12);
    assert.deepEqual(values(resumed), values(straight));
    resumed.dispose();

    // A damaged checkpoint is never resumed: one flipped bit (the weights would differ) or garbage. It is
    // removed, the caller is told, and training restarts from scratch by itself, matching the uninterrupted run.
    for (const damage of ['flip', 'garbage'] as const) {
      const dirC = await mkdtemp(join(tmpdir(), 'ckC-'));
      const pre = tinyNet(1, stochastic);
      await trainNet({ ...opts, epochs: 2, net: pre, loss: lossFor(pre), checkpointDir: dirC });
      pre.dispose();
      const bytes = await readFile(join(dirC, CHECKPOINT_FILE));
      if (damage === 'flip') bytes[bytes.length - 3] ^= 0x10;
      await writeFile(join(dirC, CHECKPOINT_FILE), damage === 'flip' ? bytes : 'garbage');
      const net = tinyNet(1, stochastic);
      const warnings: string[] = [];
      const again = await trainNet({
        ...opts,
        net,
        loss: lossFor(net),
        checkpointDir: dirC,
        onWarning: (m) => warnings.push(m),
      });
      assert.equal(again.resumedFrom, 0, `${damage}: not resumed`);
      assert.equal(warnings.length, 1, `${damage}: one warning`);
      assert.match(
        warnings[0],
        damage === 'flip'
          ? /checkpoint .* is damaged \(its bytes do not match its digest\); removed it, training restarts from scratch/
          : /checkpoint .* is damaged \(not a facepipe checkpoint of this version\)/,
      );
      assert.deepEqual(values(net), values(straight), `${damage}: same weights as the uninterrupted run`);
      net.dispose();
    }
    straight.dispose();
  });

test('checkpointSeconds: epochs inside the interval are not saved, the last epoch of a call always is', async () => {
  const opts = { batches: provider, lr: 0.05, seed: 11, checkpointSeconds: 3600 };
  const straight = tinyNet(1);
  await trainNet({ ...opts, epochs: 4, net: straight, loss: lossFor(straight) });
  const dir = await mkdtemp(join(tmpdir(), 'ckS-'));
  // Aborted in epoch 3: epochs 1 and 2 fell inside the interval, so there is nothing to resume.
  const ac = new AbortController();
  let steps = 0;
  const aborted = tinyNet(1);
  await assert.rejects(
    trainNet({
      ...opts,
      epochs: 3,
      net: aborted,
      loss: lossFor(aborted),
      checkpointDir: dir,
      signal: ac.signal,
      onStep: () => {
        if (++steps === 7) ac.abort();
      },
    }),
    AbortError,
  );
  aborted.dispose();
  assert.ok(!existsSync(join(dir, CHECKPOINT_FILE)), 'no checkpoint inside the interval');
  // A call that ends writes its last epoch, and the run resumes from it to the uninterrupted weights.
  const first = tinyNet(1);
  await trainNet({ ...opts, epochs: 2, net: first, loss: lossFor(first), checkpointDir: dir });
  first.dispose();
  const resumed = tinyNet(99);
  const r = await trainNet({ ...opts, epochs: 4, net: resumed, loss: lossFor(resumed), checkpointDir: dir });
  assert.equal(r.resumedFrom, 2);
  assert.deepEqual(values(resumed), values(straight));
  resumed.dispose();
  straight.dispose();
});

test('an aborted signal stops training between steps with an AbortError', async () => {
  const net = tinyNet();
  const before = tf.memory().numTensors;
  const ac = new AbortController();
  let steps = 0;
  await assert.rejects(
    trainNet({
      net,
      batches: provider,
      loss: lossFor(net),
      epochs: 3,
      lr: 0.01,
      signal: ac.signal,
      onStep: () => {
        if (++steps === 2) ac.abort();
      },
    }),
    (e: unknown) => e instanceof AbortError && e.name === 'AbortError',
  );
  assert.equal(steps, 2);
  assert.equal(tf.memory().numTensors, before, 'tensors leaked on abort');
  net.dispose();
});

for (const stochastic of [false, true])
  test(`microBatch gives the same update as the whole batch (triplet mining sees all chunks)${stochastic ? ', seeded random masks' : ''}`, async () => {
    const run = async (microBatch?: number) => {
      // The whole-batch reference draws its masks chunk by chunk, as micro-batching does.
      const net = tinyNet(1, stochastic, microBatch ? 0 : 2);
      await trainNet({ net, batches: provider, loss: lossFor(net), epochs: 1, lr: 0.05, microBatch });
      const v = net.trainableVariables().map((t) => Array.from(t.dataSync()));
      net.dispose();
      return v;
    };
    const before = tf.memory().numTensors;
    const whole = await run();
    const chunked = await run(2);
    whole.forEach((w, i) =>
      w.forEach((x, j) => assert.ok(Math.abs(x - chunked[i][j]) < 1e-5, `var ${i}[${j}]: ${x} vs ${chunked[i][j]}`)),
    );
    assert.equal(tf.memory().numTensors, before, 'tensors leaked by micro-batching');
  });

test('suggestMicroBatch: the measured wasm limits (112 px: batch 16 fits, 32 does not)', () => {
  assert.equal(suggestMicroBatch(16, 112, 1), undefined);
  const m = suggestMicroBatch(32, 112, 1)!;
  assert.ok(m >= 8 && m < 32, `chunk ${m}`);
  assert.equal(suggestMicroBatch(128, 64, 0.25), undefined);
  assert.equal(suggestMicroBatch(128, 4096, 1), 1);
});
