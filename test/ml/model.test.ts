import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/ml/backend/select.js';
import {
  blockSpecs,
  countParams,
  createEmbeddingNet,
  createPretextNet,
  createTriarchyNet,
  roundFilters,
  roundRepeats,
} from '../../src/ml/model/index.js';
import { batchNorm, createBatchNorm, ParamStore } from '../../src/ml/model/ops.js';
import { setSimdEnabled } from '../../src/ml/kernels/simd.js';
import type { BackboneConfig } from '../../src/ml/types.js';

const B0: BackboneConfig = { width: 1, depth: 1, inputSize: 64, bnMomentum: 0.9, dropConnect: 0.2 };
const TINY: BackboneConfig = { width: 0.25, depth: 0.25, inputSize: 32, bnMomentum: 0.9, dropConnect: 0.2 };

before(async () => {
  await initBackend('wasm');
});

test('B0 + Dense(512) has exactly 4,663,420 trainable parameters; backbone 4,007,548', () => {
  const inference = createEmbeddingNet({ backbone: B0, embeddingDim: 512, seed: 0 });
  assert.equal(countParams(inference), 4_663_420);
  assert.equal(countParams(inference.trainableVariables().filter((v) => v.name.includes('/backbone/'))), 4_007_548);
  inference.dispose();
  // The original pretext model: B0 + Linear(1280, 9 + 3).
  const pretext = createPretextNet({ backbone: B0, heads: { angle: 9, expression: 3 }, seed: 0 });
  assert.equal(countParams(pretext), 4_022_920);
  pretext.dispose();
  const tri = createTriarchyNet({ backbone: B0, embeddingDim: 512, numClasses: 20, seed: 0 });
  // + fc2 (512*20+20) + bn2 (2*20) + centres (20*512)
  assert.equal(countParams(tri), 4_663_420 + 512 * 20 + 20 + 40 + 20 * 512);
  assert.equal(tri.centers.shape.join(), '20,512');
  tri.dispose();
});

test('block table: 16 B0 blocks, SE from block input width, drop-connect 0.2*idx/16; EfficientNet rounding', () => {
  const specs = blockSpecs(B0);
  assert.equal(specs.length, 16);
  assert.deepEqual(
    specs.map((s) => s.outFilters),
    [16, 24, 24, 40, 40, 80, 80, 80, 112, 112, 112, 192, 192, 192, 192, 320],
  );
  assert.equal(specs[1].squeeze, 4); // input 16 -> 4, not 96 * 0.25
  assert.equal(specs[2].squeeze, 6); // repeated block: input 24
  assert.equal(specs[15].dropRate, (0.2 * 15) / 16);
  assert.equal(roundFilters(32, 0.5), 16);
  assert.equal(roundFilters(1280, 0.25), 320);
  assert.equal(roundFilters(16, 0.25), 8);
  assert.equal(roundFilters(40, 1.1), 48); // int(44 + 4) // 8 * 8 = 48
  assert.equal(roundRepeats(4, 0.5), 2);
  assert.equal(roundRepeats(3, 1.2), 4);
  assert.equal(blockSpecs(TINY).length, 7);
});

test('same seed gives the same weights, a different seed different ones', () => {
  const a = createTriarchyNet({ backbone: TINY, embeddingDim: 16, numClasses: 4, seed: 7 });
  const b = createTriarchyNet({ backbone: TINY, embeddingDim: 16, numClasses: 4, seed: 7 });
  const c = createTriarchyNet({ backbone: TINY, embeddingDim: 16, numClasses: 4, seed: 8 });
  const va = a.trainableVariables();
  const vb = b.trainableVariables();
  const vc = c.trainableVariables();
  assert.equal(va.length, vb.length);
  for (let i = 0; i < va.length; i++) assert.deepEqual(va[i].dataSync(), vb[i].dataSync(), va[i].name);
  assert.notDeepEqual(a.centers.dataSync(), c.centers.dataSync());
  assert.ok(
    va.some((v, i) => String(v.dataSync()) !== String(vc[i].dataSync())),
    'a different seed gives different weights',
  );
  a.dispose();
  b.dispose();
  c.dispose();
});

test('Triarchy forward shapes; inference mode is deterministic; training updates BN statistics', () => {
  const net = createTriarchyNet({ backbone: TINY, embeddingDim: 16, numClasses: 5, seed: 1 });
  const x = tf.randomUniform([3, 32, 32, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
  const e1 = tf.tidy(() => net.apply(x, false).embedding);
  const e2 = net.embed(x);
  assert.deepEqual(e1.shape, [3, 16]);
  assert.deepEqual(e1.dataSync(), e2.dataSync());
  const mm = net.stateVariables().find((v) => v.name.endsWith('backbone/stem/bn/moving_mean'))!;
  const before = mm.dataSync().slice();
  const out = tf.tidy(() => {
    const o = net.apply(x, true);
    return [o.embedding, o.logits];
  });
  assert.deepEqual(out[1].shape, [3, 5]);
  assert.notDeepEqual(mm.dataSync(), before);
  // Embedding from a batch of 1 equals the row of a batch embed (inference BN uses moving statistics).
  const one = net.embed(tf.slice(x, [1, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D);
  const full = net.embed(x, 2); // chunked
  const row = tf.slice(full, [1, 0], [1, -1]);
  const diff = tf.max(tf.abs(tf.sub(one, row))).dataSync()[0];
  assert.ok(diff < 1e-4, `chunked embed differs by ${diff}`);
  tf.dispose([x, e1, e2, ...out, one, full, row]);
  net.dispose();
});

test('setStepSeed replays the same drop-connect masks; without it masks differ between steps', () => {
  // depth 0.5 keeps repeated (residual) blocks, where drop-connect applies.
  const net = createTriarchyNet({
    backbone: { ...TINY, depth: 0.5, dropConnect: 0.9 },
    embeddingDim: 8,
    numClasses: 2,
    seed: 6,
  });
  const x = tf.randomUniform([6, 32, 32, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
  // momentum 0.9 BN updates change nothing in training outputs (batch statistics), so outputs depend on masks only.
  const run = () => tf.tidy(() => net.apply(x, true).embedding.dataSync().slice());
  net.setStepSeed('a:1');
  const a1 = run();
  net.setStepSeed('a:1');
  const a2 = run();
  const b = run(); // the stream continues: new masks
  assert.deepEqual(a1, a2);
  assert.notDeepEqual(a1, b);
  x.dispose();
  net.dispose();
});

test('pretext net returns features and one logits head per attribute', () => {
  const net = createPretextNet({ backbone: TINY, heads: { pose: 4, expression: 4, rotation: 4 }, seed: 2 });
  const x = tf.randomUniform([2, 32, 32, 3]) as tf.Tensor4D;
  const out = tf.tidy(() => net.apply(x, true));
  assert.deepEqual(Object.keys(out).sort(), ['features', 'logits_expression', 'logits_pose', 'logits_rotation']);
  assert.deepEqual(out.features.shape, [2, roundFilters(1280, 0.25)]);
  assert.deepEqual(out.logits_pose.shape, [2, 4]);
  tf.dispose([x, ...Object.values(out)]);
  net.dispose();
  assert.throws(() => createPretextNet({ backbone: TINY, heads: {}, seed: 0 }), /at least one head/);
  assert.throws(
    () => createTriarchyNet({ backbone: { ...TINY, bnMomentum: 1.5 }, embeddingDim: 8, numClasses: 3, seed: 0 }),
    /bnMomentum/,
  );
});

for (const backend of ['wasm', 'cpu'] as const)
  test(`batch norm (${backend} path): gradient equals autodiff of the textbook formula`, async () => {
    await initBackend(backend);
    const store = new ParamStore(3);
    const p = createBatchNorm(store, 'bn', 5, 0.9, 1e-3);
    p.gamma.assign(tf.randomUniform([5], 0.5, 1.5, 'float32', 1));
    p.beta.assign(tf.randomUniform([5], -1, 1, 'float32', 2));
    const x = tf.randomNormal([2, 3, 4, 5], 1, 2, 'float32', 4);
    const w = tf.randomNormal([2, 3, 4, 5], 0, 1, 'float32', 5);
    const ours = tf.grads((xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(batchNorm(xi, { ...p, gamma: g as tf.Variable, beta: b as tf.Variable }, true), w)),
    );
    const ref = tf.grads((xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(xi, [0, 1, 2]);
      const y = tf.add(tf.mul(tf.div(tf.sub(xi, mean), tf.sqrt(tf.add(variance, 1e-3))), g), b);
      return tf.sum(tf.mul(y, w));
    });
    const a = ours([x, p.gamma, p.beta]);
    const r = ref([x, p.gamma, p.beta]);
    for (let i = 0; i < 3; i++) {
      const err = tf.max(tf.abs(tf.sub(a[i], r[i]))).dataSync()[0] / Math.max(1e-6, tf.max(tf.abs(r[i])).dataSync()[0]);
      assert.ok(err < 1e-4, `gradient ${i}: relative error ${err}`);
    }
    // One training call updated the moving statistics, TF convention (momentum 0.9), unbiased variance.
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    const m = 2 * 3 * 4;
    const mm = p.movingMean.dataSync();
    const mv = p.movingVariance.dataSync();
    const bm = mean.dataSync();
    const bv = variance.dataSync();
    for (let c = 0; c < 5; c++) {
      assert.ok(Math.abs(mm[c] - 0.1 * bm[c]) < 1e-5, `moving mean ${c}`);
      assert.ok(Math.abs(mv[c] - (0.9 + (0.1 * bv[c] * m) / (m - 1))) < 1e-4, `moving variance ${c}`);
    }
    tf.dispose([x, w, mean, variance, ...a, ...r]);
    store.dispose();
    await initBackend('wasm');
  });

// Without SIMD, wasm takes the op-by-op batch norm (average-pooling channel means) and plain swish gradient.
for (const simd of [true, false])
  test(`a full training step gives the same gradients on wasm (${simd ? 'SIMD kernels' : 'op path'}) and cpu`, async () => {
    setSimdEnabled(simd);
    const grads = async (backend: string) => {
      await initBackend(backend as 'wasm' | 'cpu');
      const net = createTriarchyNet({ backbone: { ...TINY, dropConnect: 0 }, embeddingDim: 8, numClasses: 3, seed: 5 });
      const x = tf.randomUniform([4, 32, 32, 3], 0, 1, 'float32', 9) as tf.Tensor4D;
      const labels = tf.tensor1d([0, 1, 2, 1], 'int32');
      const { value, grads: g } = tf.variableGrads(() => {
        const { embedding, logits } = net.apply(x, true);
        const ce = tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 3), logits);
        const centre = tf.mean(tf.sum(tf.square(tf.sub(embedding, tf.gather(net.centers, labels))), 1));
        return tf.add(ce, centre) as tf.Scalar;
      }, net.trainableVariables());
      const out = new Map<string, Float32Array>();
      for (const [name, t] of Object.entries(g)) out.set(name.replace(/^fp\d+\//, ''), t.dataSync() as Float32Array);
      const loss = value.dataSync()[0];
      tf.dispose([x, labels, value, ...Object.values(g)]);
      net.dispose();
      return { loss, out };
    };
    const cpu = await grads('cpu');
    const wasm = await grads('wasm');
    setSimdEnabled(true);
    assert.ok(Math.abs(cpu.loss - wasm.loss) < 1e-4 * Math.abs(cpu.loss));
    assert.equal(wasm.out.size, cpu.out.size);
    // Some gradients are zero in theory (a BN beta feeding straight into another BN): judge them against
    // the largest gradient of the net instead of their own rounding noise.
    const globalMax = Math.max(...[...cpu.out.values()].map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
    for (const [name, ref] of cpu.out) {
      const got = wasm.out.get(name)!;
      let maxRef = 0;
      let maxDiff = 0;
      for (let i = 0; i < ref.length; i++) {
        maxRef = Math.max(maxRef, Math.abs(ref[i]));
        maxDiff = Math.max(maxDiff, Math.abs(ref[i] - got[i]));
      }
      assert.ok(maxDiff <= 1e-3 * maxRef + 1e-5 * globalMax, `${name}: ${maxDiff} vs max ${maxRef}`);
    }
  });

test('no tensor leaks over training steps (drop-connect on)', () => {
  const net = createTriarchyNet({ backbone: { ...TINY, depth: 0.5 }, embeddingDim: 8, numClasses: 2, seed: 3 });
  const x = tf.randomUniform([4, 32, 32, 3]) as tf.Tensor4D;
  const labels = tf.tensor1d([0, 0, 1, 1], 'int32');
  const opt = tf.train.adam(1e-3);
  const step = () => {
    const loss = opt.minimize(
      () => {
        const { embedding, logits } = net.apply(x, true);
        return tf.add(
          tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 2), logits),
          tf.mean(tf.square(tf.sub(embedding, tf.gather(net.centers, labels)))),
        ) as tf.Scalar;
      },
      true,
      net.trainableVariables(),
    );
    loss?.dispose();
  };
  step();
  const n = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) step();
  assert.equal(tf.memory().numTensors, n);
  opt.dispose();
  tf.dispose([x, labels]);
  net.dispose();
});
