// Sharded data-parallel training on worker threads: the shard count fixes the math, the worker count only
// schedules it, so 1, 2 or 3 workers must give byte-identical weights, and a resumed run must too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/ml/backend/select.js';
import { randInt } from '../../src/ml/data/rng.js';
import { embedFiles } from '../../src/ml/eval/embed.js';
import { triarchyLoss } from '../../src/ml/losses/triarchy.js';
import { saveInferenceModel } from '../../src/ml/model/io.js';
import { createTriarchyNet, type TriarchyNet, type TriarchyOptions } from '../../src/ml/model/triarchy.js';
import { Adam } from '../../src/ml/train/adam.js';
import { adamKernelsFor, sharedMemory } from '../../src/ml/train/parallel/adam-wasm.js';
import { ShardedEngine } from '../../src/ml/train/parallel/engine.js';
import { WorkerPool } from '../../src/ml/train/parallel/pool.js';
import { prefetchBatches } from '../../src/ml/train/parallel/prefetch.js';
import {
  foldBatchStats,
  offsetsOf,
  reduceAndAdam,
  shardOrder,
  shardRows,
  workerElements,
  workerShards,
} from '../../src/ml/train/parallel/update.js';
import { trainNet, type BatchProvider } from '../../src/ml/train/trainer.js';
import { CMU_FACES } from '../stages/fake-context.js';

await initBackend('wasm');

const SIZE = 32;
const OPTIONS: TriarchyOptions = {
  // Drop-connect on: its masks are seeded per step and shard, so they must not depend on the worker.
  backbone: { width: 0.1, depth: 0.1, inputSize: SIZE, bnMomentum: 0.9, dropConnect: 0.2 },
  embeddingDim: 8,
  numClasses: 4,
  seed: 3,
};

/** 3 seeded batches of 8 (4 identities x 2) per epoch: noise around an identity-dependent level. */
const provider: BatchProvider = function* (_epoch, rng) {
  for (let b = 0; b < 3; b++) {
    const labels = Array.from({ length: 8 }, (_, i) => (Math.floor(i / 2) + randInt(rng, 4)) % 4);
    const x = new Float32Array(8 * SIZE * SIZE * 3);
    for (let i = 0; i < x.length; i++) x[i] = labels[Math.floor(i / (SIZE * SIZE * 3))] / 4 + 0.3 * rng();
    yield { x: tf.tensor4d(x, [8, SIZE, SIZE, 3]), labels: { identity: tf.tensor1d(labels, 'int32') }, indices: [] };
  }
};

/** Every variable's bytes, trainable then state (BN moving statistics). */
const snapshot = (net: TriarchyNet) =>
  Buffer.concat(
    [...net.trainableVariables(), ...net.stateVariables()].map((v) => Buffer.from(v.dataSync().buffer.slice(0))),
  );

async function trainSharded(o: {
  shards: number;
  workers: number;
  epochs: number;
  checkpointDir?: string;
}): Promise<{ bytes: Buffer; losses: number[]; workers: number }> {
  const net = createTriarchyNet(OPTIONS);
  const engine = await ShardedEngine.start({
    spec: { kind: 'triarchy', options: OPTIONS },
    shards: o.shards,
    workers: o.workers,
    backend: 'wasm',
  });
  try {
    const r = await trainNet({
      net,
      batches: provider,
      loss: (out, batch) =>
        triarchyLoss(
          { embedding: out.embedding, logits: out.logits },
          batch.labels.identity,
          net.centers as tf.Tensor as tf.Tensor2D,
        ),
      epochs: o.epochs,
      lr: 0.01,
      seed: 5,
      checkpointDir: o.checkpointDir,
      engine,
    });
    return { bytes: snapshot(net), losses: r.history.map((h) => h.loss), workers: engine.workers };
  } finally {
    await engine.close();
    net.dispose();
  }
}

test('shards: rows, worker blocks and element ranges partition their ranges', () => {
  assert.deepEqual(shardRows(8, 3), [
    [0, 3],
    [3, 3],
    [6, 2],
  ]);
  assert.deepEqual(shardRows(2, 3), [
    [0, 1],
    [1, 1],
    [2, 0],
  ]);
  // Interleaved: each shard of a P x K batch (here 2 identities x 4) holds every identity.
  assert.deepEqual(shardOrder(8, 2), [0, 2, 4, 6, 1, 3, 5, 7]);
  assert.deepEqual(shardOrder(8, 3), [0, 3, 6, 1, 4, 7, 2, 5]);
  assert.deepEqual(
    [0, 1].map((w) => workerShards(w, 2, 3)),
    [[0], [1, 2]],
  );
  assert.deepEqual(
    [0, 1, 2].map((w) => workerElements(w, 3, 10)),
    [
      [0, 3],
      [3, 6],
      [6, 10],
    ],
  );
});

test('reduceAndAdam: shard gradients summed in order, PyTorch Adam, any element split alike', () => {
  const n = 7;
  const sizes = [3, 4];
  const offsets = offsetsOf(sizes);
  const make = () => ({
    params: Float32Array.from({ length: n }, (_, i) => 0.1 * i - 0.2),
    m: new Float32Array(n),
    v: new Float32Array(n),
    grads: Float32Array.from({ length: 2 * n }, (_, i) => Math.sin(i + 1)),
    direct: Float32Array.from({ length: n }, (_, i) => 0.01 * i),
    // Variable 0: both shards; variable 1: shard 1 plus a direct gradient.
    hasGrad: Uint8Array.from([1, 0, 1, 1, 0, 1]),
  });
  const whole = make();
  const split = make();
  const step = { lr: 0.01, step: 1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
  reduceAndAdam(whole, offsets, 2, step, 0, n);
  reduceAndAdam(split, offsets, 2, step, 0, 2);
  reduceAndAdam(split, offsets, 2, step, 2, 5);
  reduceAndAdam(split, offsets, 2, step, 5, n);
  assert.deepEqual(split.params, whole.params);
  // The same update through ../adam.ts on the reduced gradient.
  const g = Float32Array.from({ length: n }, (_, e) =>
    e < 3 ? Math.fround(whole.grads[e] + whole.grads[n + e]) : Math.fround(whole.grads[n + e] + whole.direct[e]),
  );
  const p = tf.variable(tf.tensor1d(make().params));
  const adam = new Adam([p]);
  const gt = tf.tensor1d(g);
  adam.apply([gt], 0.01);
  const ref = p.dataSync();
  for (let e = 0; e < n; e++) assert.ok(Math.abs(ref[e] - whole.params[e]) < 1e-6, `element ${e}`);
  tf.dispose([p, gt]);
  adam.dispose();
});

test('reduceAndAdam: the WebAssembly SIMD kernels and their JavaScript twin give the same bits', () => {
  // Odd sizes and slices: elements fall in vector lanes or in scalar tails depending on the slice.
  const sizes = [7, 13, 1, 64, 30];
  const offsets = offsetsOf(sizes);
  const n = offsets.at(-1)!;
  const shards = 3;
  const make = () => {
    const mem = sharedMemory(4 * 16 * (4 * n + shards * n));
    const view = (i: number, len: number) => new Float32Array(mem.buffer, 4 * i * Math.ceil(n / 4) * 4, len);
    const s = {
      params: view(0, n),
      m: view(1, n),
      v: view(2, n),
      direct: view(3, n),
      grads: view(4, shards * n),
      // Variable 1 lacks shard 1; variable 2 has only a direct gradient; variable 3 none at all.
      hasGrad: Uint8Array.from([1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 0, 1]),
    };
    let x = 0.37;
    const next = () => (x = (x * 9301 + 49297) % 233280) / 233280 - 0.5;
    for (const arr of [s.params, s.m, s.v, s.direct, s.grads]) for (let i = 0; i < arr.length; i++) arr[i] = next();
    for (let i = 0; i < n; i++) s.v[i] = Math.abs(s.v[i]);
    return { mem, s };
  };
  const js = make();
  const simd = make();
  const kernels = adamKernelsFor(simd.mem);
  assert.ok(kernels, 'WebAssembly SIMD kernels should compile here');
  const step = { lr: 0.01, step: 3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };
  reduceAndAdam(js.s, offsets, shards, step, 0, n);
  for (const [from, to] of [
    [0, 5],
    [5, 22],
    [22, 59],
    [59, n],
  ])
    reduceAndAdam({ ...simd.s, kernels }, offsets, shards, step, from, to);
  for (const key of ['params', 'm', 'v'] as const)
    assert.ok(
      Buffer.from(js.s[key].buffer, js.s[key].byteOffset, 4 * n).equals(
        Buffer.from(simd.s[key].buffer, simd.s[key].byteOffset, 4 * n),
      ),
      key,
    );
  // Variable 3 (no gradient) is untouched.
  assert.deepEqual(js.s.params.subarray(offsets[3], offsets[4]), make().s.params.subarray(offsets[3], offsets[4]));
});

test('foldBatchStats: the shards give the whole batch its moving statistics', () => {
  // One layer, 2 channels; shard sizes 3 and 5.
  const data = [
    [1, 2, 3, 4, 5, 6, 7, 8],
    [0.5, -1, 2, 0, 3, 1, 1, -2],
  ];
  const cut = 3;
  const meanVar = (xs: number[]) => {
    const mu = xs.reduce((a, b) => a + b, 0) / xs.length;
    return [mu, xs.reduce((a, b) => a + (b - mu) ** 2, 0) / xs.length];
  };
  const stats = new Float32Array(2 * 4);
  [0, 1].forEach((s) =>
    [0, 1].forEach((c) => {
      const [mu, v] = meanVar(s === 0 ? data[c].slice(0, cut) : data[c].slice(cut));
      stats[s * 4 + c] = mu;
      stats[s * 4 + 2 + c] = v;
    }),
  );
  const state = Float32Array.from([0, 0, 1, 1]);
  foldBatchStats(state, [0, 2, 4], [{ meanVar: 0, varVar: 1, momentum: 0.9 }], stats, [[3], [5]]);
  [0, 1].forEach((c) => {
    const [mu, v] = meanVar(data[c]);
    assert.ok(Math.abs(state[c] - 0.1 * mu) < 1e-6);
    assert.ok(Math.abs(state[2 + c] - (0.9 + 0.1 * ((v * 8) / 7))) < 1e-6);
  });
});

test('sharded training: 1, 2 and 3 workers give byte-identical weights', async () => {
  const one = await trainSharded({ shards: 3, workers: 1, epochs: 2 });
  const two = await trainSharded({ shards: 3, workers: 2, epochs: 2 });
  const three = await trainSharded({ shards: 3, workers: 3, epochs: 2 });
  assert.deepEqual([one.workers, two.workers, three.workers], [1, 2, 3]);
  assert.ok(one.losses.every(Number.isFinite));
  assert.ok(one.bytes.equals(two.bytes), '1 and 2 workers differ');
  assert.ok(one.bytes.equals(three.bytes), '1 and 3 workers differ');
  assert.deepEqual(one.losses, two.losses);
  // The shard count is the math: another one trains differently.
  const other = await trainSharded({ shards: 2, workers: 2, epochs: 2 });
  assert.ok(!other.bytes.equals(one.bytes), 'shards should change the result');
});

test('sharded training: a run resumed from its checkpoint (on another worker count) matches a straight one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fp-sharded-'));
  try {
    const straight = await trainSharded({ shards: 2, workers: 2, epochs: 3 });
    await trainSharded({ shards: 2, workers: 1, epochs: 1, checkpointDir: dir });
    const resumed = await trainSharded({ shards: 2, workers: 2, epochs: 3, checkpointDir: dir });
    assert.equal(resumed.losses.length, 3);
    assert.ok(resumed.bytes.equals(straight.bytes), 'resumed weights differ');
    assert.deepEqual(resumed.losses, straight.losses);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('worker pool: embeddings equal the in-process ones bit for bit, for any worker count', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fp-pool-'));
  const net = createTriarchyNet({ ...OPTIONS, backbone: { ...OPTIONS.backbone, dropConnect: 0 } });
  try {
    await saveInferenceModel(net, dir);
    const files = [
      'an2i/an2i_left_angry_open_2.pgm',
      'an2i/an2i_left_happy_open_2.pgm',
      'at33/at33_left_angry_open_2.pgm',
    ];
    const opts = { inputSize: SIZE, batchSize: 2, flipAverage: true };
    const local = await embedFiles(net, CMU_FACES(), files, opts);
    for (const workers of [1, 2]) {
      const pool = await WorkerPool.start({ kind: 'inference', dir }, workers, 'wasm');
      try {
        const got = await pool.embedFiles(CMU_FACES(), files, opts);
        assert.equal(got.dim, local.dim);
        got.rows.forEach((r, i) => assert.deepEqual(r, local.rows[i], `row ${i}, ${workers} workers`));
      } finally {
        await pool.close();
      }
    }
  } finally {
    net.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});

test('sharded training: a failing loss fails the run cleanly (workers waiting on it are released)', async () => {
  const net = createTriarchyNet(OPTIONS);
  const engine = await ShardedEngine.start({
    spec: { kind: 'triarchy', options: OPTIONS },
    shards: 2,
    workers: 2,
    backend: 'wasm',
  });
  let calls = 0;
  try {
    await assert.rejects(
      trainNet({
        net,
        batches: provider,
        loss: (out, batch) => {
          if (++calls === 2) throw new Error('boom in the loss');
          return triarchyLoss(
            { embedding: out.embedding, logits: out.logits },
            batch.labels.identity,
            net.centers as tf.Tensor as tf.Tensor2D,
          );
        },
        epochs: 1,
        lr: 0.01,
        engine,
      }),
      /boom in the loss/,
    );
  } finally {
    await engine.close();
    net.dispose();
  }
  assert.equal(calls, 2);
});

test('prefetchBatches: the same batches in order, read ahead only after the current one is handed out', async () => {
  const log: string[] = [];
  async function* source() {
    for (let i = 0; i < 3; i++) {
      log.push(`load ${i}`);
      await Promise.resolve();
      yield { x: tf.zeros([1, 1, 1, 1]) as tf.Tensor4D, labels: {}, indices: [i] };
    }
  }
  for await (const b of prefetchBatches(source())) {
    // The consumer's own microtasks (a step handing the batch out) run before the next load starts.
    await Promise.resolve();
    log.push(`step ${b.indices[0]}`);
    b.x.dispose();
  }
  assert.deepEqual(log, ['load 0', 'step 0', 'load 1', 'step 1', 'load 2', 'step 2']);
});

test('prefetchBatches: a batch that fails to load fails where it is awaited, never as an unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    async function* source() {
      yield { x: tf.zeros([1, 1, 1, 1]) as tf.Tensor4D, labels: {}, indices: [0] };
      await Promise.resolve();
      throw new Error('bad image');
    }
    await assert.rejects(async () => {
      for await (const b of prefetchBatches(source())) {
        // A long step: the read-ahead fails meanwhile.
        await new Promise((r) => setTimeout(r, 50));
        b.x.dispose();
      }
    }, /bad image/);
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
