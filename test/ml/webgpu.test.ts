// The webgpu backend on a software adapter (Mesa lavapipe, see webgpu-adapter.ts): a training step matches cpu,
// facepipe's fused kernels match the stock ones and halve the dispatches, and nothing leaks.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { packageRoot } from '../../src/core/package-root.js';
import { backendMetrics, initBackend, probeBackends } from '../../src/ml/backend/select.js';
import { countDispatches } from '../../src/ml/backend/webgpu.js';
import { setBatchNormSegmentRows } from '../../src/ml/kernels/webgpu/batchnorm.js';
import {
  FACEPIPE_WEBGPU_KERNELS,
  registerWebGpuKernels,
  setWebGpuFusion,
} from '../../src/ml/kernels/webgpu/register.js';
import { triarchyLoss } from '../../src/ml/losses/triarchy.js';
import { createTriarchyNet } from '../../src/ml/model/index.js';
import { batchNorm, createBatchNorm, ParamStore, swish } from '../../src/ml/model/ops.js';
import { Adam } from '../../src/ml/train/adam.js';
import type { BackboneConfig } from '../../src/ml/types.js';
import { useSoftwareAdapter } from './webgpu-adapter.js';

const TINY: BackboneConfig = { width: 0.25, depth: 0.25, inputSize: 32, bnMomentum: 0.9, dropConnect: 0 };

/** Loss and gradients (by logical variable name) of one Triarchy step, read asynchronously. */
async function stepGradients(): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
  const net = createTriarchyNet({ backbone: TINY, embeddingDim: 16, numClasses: 3, seed: 5 });
  const x = tf.randomUniform<tf.Rank.R4>([6, 32, 32, 3], 0, 1, 'float32', 9);
  const labels = tf.tensor1d([0, 0, 1, 1, 2, 2], 'int32');
  const { value, grads } = tf.variableGrads(
    () => triarchyLoss(net.apply(x, true), labels, net.centers as unknown as tf.Tensor2D).total,
    net.trainableVariables(),
  );
  const out = new Map<string, Float32Array>();
  for (const [name, g] of Object.entries(grads))
    out.set(name.replace(/^fp\d+\//, ''), (await g.data()) as Float32Array);
  const loss = (await value.data())[0];
  tf.dispose([x, labels, value, ...Object.values(grads)]);
  net.dispose();
  return { loss, grads: out };
}

/** max |a - b| <= rel * max |b| (+ a floor relative to the largest value of the whole set). */
function assertClose(got: ArrayLike<number>, ref: ArrayLike<number>, rel: number, what: string, floor = 0): void {
  assert.equal(got.length, ref.length, `${what}: length`);
  let maxRef = 0;
  let maxDiff = 0;
  for (let i = 0; i < ref.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
    maxDiff = Math.max(maxDiff, Math.abs(ref[i] - got[i]));
  }
  assert.ok(maxDiff <= rel * maxRef + floor, `${what}: max difference ${maxDiff} vs max ${maxRef}`);
}

test('every kernel a training step uses is registered for webgpu (no adapter needed)', async () => {
  await initBackend('cpu');
  await import('@tensorflow/tfjs-backend-webgpu');
  registerWebGpuKernels();
  const net = createTriarchyNet({ backbone: { ...TINY, dropConnect: 0.2 }, embeddingDim: 8, numClasses: 2, seed: 1 });
  const adam = new Adam(net.trainableVariables());
  const x = tf.randomUniform<tf.Rank.R4>([4, 32, 32, 3]);
  const labels = tf.tensor1d([0, 0, 1, 1], 'int32');
  const info = await tf.profile(() => {
    const { value, grads } = tf.variableGrads(
      () => triarchyLoss(net.apply(x, true), labels, net.centers as unknown as tf.Tensor2D).total,
      net.trainableVariables(),
    );
    adam.apply(
      net.trainableVariables().map((v) => grads[v.name]),
      1e-3,
    );
    tf.dispose([value, ...Object.values(grads)]);
  });
  const webgpu = new Set(tf.getKernelsForBackend('webgpu').map((k) => k.kernelName));
  // Profile names also include customGrad ops ('forward', 'logSoftmax__op'): keep real (cpu-registered) kernels.
  const used = [...new Set(info.kernelNames)].filter((k) => tf.getKernel(k, 'cpu'));
  assert.ok(used.length > 20, `kernels seen: ${used.join(', ')}`);
  assert.deepEqual(
    used.filter((k) => !webgpu.has(k)),
    [],
  );
  for (const k of FACEPIPE_WEBGPU_KERNELS) assert.ok(webgpu.has(k), k);
  tf.dispose([x, labels]);
  adam.dispose();
  net.dispose();
});

test('one training step of a tiny net matches cpu: loss and gradients (relative 1e-4), fused and stock', async () => {
  await initBackend('cpu');
  const cpu = await stepGradients();
  const info = await useSoftwareAdapter();
  assert.equal(info.name, 'webgpu');
  assert.match(info.adapter ?? '', /software/);
  for (const fused of [true, false]) {
    setWebGpuFusion(fused);
    const gpu = await stepGradients();
    const how = fused ? 'fused' : 'stock';
    assert.ok(Math.abs(gpu.loss - cpu.loss) <= 1e-4 * Math.abs(cpu.loss), `${how} loss ${gpu.loss} vs cpu ${cpu.loss}`);
    assert.equal(gpu.grads.size, cpu.grads.size);
    // Some gradients are zero in theory (a BN beta feeding another BN): judge those against the net's largest.
    const globalMax = Math.max(...[...cpu.grads.values()].map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
    for (const [name, ref] of cpu.grads)
      assertClose(gpu.grads.get(name)!, ref, 1e-4, `${how} ${name}`, 1e-6 * globalMax);
  }
  setWebGpuFusion(true);
});

test('fused batch norm matches the stock op path (one and two reduction dispatches), forward and backward', async () => {
  await useSoftwareAdapter();
  const store = new ParamStore(3);
  const c = 40; // not a multiple of the 32-channel workgroup
  const p = createBatchNorm(store, 'bn', c, 0.9, 1e-3);
  p.gamma.assign(tf.randomUniform([c], 0.5, 1.5, 'float32', 7));
  // Mean far from zero, to catch a variance that cancels.
  const x = tf.variable(tf.add(tf.mul(tf.randomUniform([3, 7, 5, c], -1, 1, 'float32', 4), 3), 5));
  const dy = tf.randomUniform([3, 7, 5, c], -1, 1, 'float32', 6);
  const reset = () => {
    p.movingMean.assign(tf.fill([c], 0.25));
    p.movingVariance.assign(tf.fill([c], 2));
  };
  const run = async () => {
    reset();
    const y = tf.tidy(() => batchNorm(x, p, true));
    const moving = await Promise.all([y.data(), p.movingMean.data(), p.movingVariance.data()]);
    y.dispose();
    reset();
    const { grads } = tf.variableGrads(
      () => tf.sum<tf.Scalar>(tf.mul(batchNorm(x, p, true), dy)),
      [x, p.gamma, p.beta],
    );
    const g = await Promise.all([x, p.gamma, p.beta].map((v) => grads[v.name].data()));
    tf.dispose(Object.values(grads));
    return [...moving, ...g];
  };
  setWebGpuFusion(false);
  const stock = await run();
  setWebGpuFusion(true);
  const names = ['y', 'moving mean', 'moving variance', 'dx', 'dgamma', 'dbeta'];
  for (const rows of [2048, 16]) {
    setBatchNormSegmentRows(rows); // 105 rows: one segment, then seven
    const fused = await run();
    fused.forEach((v, i) => assertClose(v, stock[i], 2e-5, `${names[i]} (${rows} rows per segment)`, 1e-6));
  }
  setBatchNormSegmentRows(2048);
  tf.dispose([x, dy]);
  store.dispose();
});

test('fused swish matches the stock op path, forward and gradient', async () => {
  await useSoftwareAdapter();
  const x = tf.randomUniform([5, 9, 7, 11], -12, 12, 'float32', 3);
  const dy = tf.randomUniform([5, 9, 7, 11], -1, 1, 'float32', 4);
  const run = async () => {
    const { value, grad } = tf.valueAndGrad((t: tf.Tensor) => tf.sum(tf.mul(swish(t), dy)))(x);
    const y = swish(x);
    const out = await Promise.all([y.data(), grad.data(), value.data()]);
    tf.dispose([y, grad, value]);
    return out;
  };
  setWebGpuFusion(false);
  const stock = await run();
  setWebGpuFusion(true);
  const fused = await run();
  ['y', 'dx', 'loss'].forEach((what, i) => assertClose(fused[i], stock[i], 1e-5, what, 1e-6));
  tf.dispose([x, dy]);
});

test('multi-tensor Adam matches the op-by-op update over several steps, and skips shared buffers', async () => {
  await useSoftwareAdapter();
  // Odd sizes, more variables than one dispatch takes.
  const shapes = [[3], [7, 5], [1], [2, 3, 4], [300], [9, 1], [5]];
  const run = async (fused: boolean) => {
    setWebGpuFusion(fused);
    const vars = shapes.map((s, i) => tf.variable(tf.randomUniform(s, -1, 1, 'float32', i)));
    const held = vars[2].clone(); // shares vars[2]'s buffer: must not be written in place
    const adam = new Adam(vars);
    for (let step = 0; step < 3; step++) {
      const grads = shapes.map((s, i) =>
        i === 4 && step === 1 ? undefined : tf.randomUniform(s, -1, 1, 'float32', 10 * step + i),
      );
      adam.apply(grads, 0.01 * (step + 1));
      tf.dispose(grads.filter((g): g is tf.Tensor => g !== undefined));
    }
    const out = await Promise.all([...vars, ...adam.m, ...adam.v, held].map((t) => t.data()));
    adam.dispose();
    tf.dispose([...vars, held]);
    return out;
  };
  const stock = await run(false);
  const fused = await run(true);
  fused.forEach((v, i) => assertClose(v, stock[i], 1e-6, `tensor ${i}`, 1e-7));
  assert.deepEqual(fused.at(-1), stock.at(-1), 'the clone kept the initial value');
});

test('fused kernels at least halve the dispatches of a training step; no tensor leaks', async () => {
  await useSoftwareAdapter();
  const net = createTriarchyNet({ backbone: { ...TINY, dropConnect: 0.2 }, embeddingDim: 16, numClasses: 3, seed: 5 });
  const x = tf.randomUniform<tf.Rank.R4>([6, 32, 32, 3], 0, 1, 'float32', 9);
  const labels = tf.tensor1d([0, 0, 1, 1, 2, 2], 'int32');
  const adam = new Adam(net.trainableVariables());
  const step = async () => {
    const { value, grads } = tf.variableGrads(
      () => triarchyLoss(net.apply(x, true), labels, net.centers as unknown as tf.Tensor2D).total,
      net.trainableVariables(),
    );
    adam.apply(
      net.trainableVariables().map((v) => grads[v.name]),
      1e-3,
    );
    const loss = (await value.data())[0];
    tf.dispose([value, ...Object.values(grads)]);
    return loss;
  };
  const count = async (fused: boolean) => {
    setWebGpuFusion(fused);
    await step();
    const read = await countDispatches();
    await step();
    return read();
  };
  const stock = await count(false);
  const fused = await count(true);
  assert.ok(fused <= stock / 2, `dispatches per step: fused ${fused}, stock ${stock}`);
  const n = tf.memory().numTensors;
  for (let i = 0; i < 2; i++) assert.ok(Number.isFinite(await step()));
  assert.equal(tf.memory().numTensors, n);
  tf.dispose([x, labels]);
  adam.dispose();
  net.dispose();
});

test('webgpu: doctor shows the adapter (vendor, architecture, software/fallback, limits); auto passes over software', async () => {
  const info = await useSoftwareAdapter();
  assert.equal(info.name, 'webgpu');
  assert.match(info.version, /tfjs-backend-webgpu 4\.\d+\.\d+, webgpu 0\.6\.2/);
  const probes = await probeBackends();
  const webgpu = probes.find((p) => p.name === 'webgpu')!;
  assert.equal(webgpu.available, true);
  assert.equal(webgpu.autoEligible, false, 'lavapipe is a software adapter');
  assert.match(webgpu.detail, /mesa software, llvmpipe.*software \(fallback adapter\)/);
  assert.match(
    webgpu.more!.join('\n'),
    /vendor 'mesa', architecture 'software'.*\n.*maxStorageBufferBindingSize 128 MiB/,
  );
  // auto (in a fresh process: it keeps whatever this one chose) skips it even with the adapter at hand.
  const select = join(packageRoot(), 'dist', 'src', 'ml', 'backend', 'select.js');
  const code = `const { initBackend } = await import(${JSON.stringify(select)}); console.log('AUTO', (await initBackend('auto')).name);`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8',
    env: process.env,
  });
  assert.match(child.stdout, /^AUTO wasm$/m, child.stderr);
  assert.deepEqual(Object.keys(backendMetrics(info)), ['backend', 'adapter']);
});
