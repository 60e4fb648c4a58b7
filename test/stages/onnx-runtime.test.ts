// prune writes model.onnx; evaluate embeds through onnxruntime-node (runtime: onnx) or TF.js (runtime: tfjs),
// and both give the same results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/ml/backend/select.js';
import { readOnnxModelInfo } from '../../src/ml/export/onnx/index.js';
import { createTriarchyNet, saveNet } from '../../src/ml/model/index.js';
import { onnxRuntimeStatus } from '../../src/ml/export/onnx/runtime.js';
import { kind as evaluateKind } from '../../src/stages/evaluate/kind.js';
import { run as evaluateRun } from '../../src/stages/evaluate/run.js';
import { kind as pruneKind } from '../../src/stages/prune/kind.js';
import { run as pruneRun } from '../../src/stages/prune/run.js';
import { CMU_FACES, fakeContext } from './fake-context.js';
import { tinySplits, tinyTriarchy, tinyTriarchyParams } from './face-fixture.js';

/**
 * A triarchy model whose embeddings depend on the image: BN statistics from one training-mode pass (momentum 0),
 * its own so that this comparison does not depend on how the stage fixture trains.
 */
async function responsiveTriarchy(): Promise<string> {
  await initBackend('wasm');
  const backbone = { width: 0.25, depth: 0.25, inputSize: 32, bnMomentum: 0, dropConnect: 0 };
  const net = createTriarchyNet({ backbone, embeddingDim: 16, numClasses: 4, seed: 4 });
  tf.tidy(() => {
    net.apply(tf.randomUniform<tf.Rank.R4>([16, 32, 32, 3], 0, 1, 'float32', 4), true);
  });
  const dir = mkdtempSync(join(tmpdir(), 'responsive-triarchy-'));
  await saveNet(net, dir);
  net.dispose();
  return dir;
}

async function requireOrt(): Promise<void> {
  const ort = await onnxRuntimeStatus();
  assert.ok(ort.available, `these tests need onnxruntime-node (${ort.detail}); npm ci installs it`);
}

test('prune: writes model.onnx beside the TF.js model, checked against it, metadata saying layout and scaling', async () => {
  await requireOrt();
  const ctx = fakeContext(pruneKind, {}, { model: await tinyTriarchy() });
  try {
    await pruneRun(ctx);
    const info = await readOnnxModelInfo(join(ctx.outputs.model, 'model.onnx'));
    const size = tinyTriarchyParams.backbone.input_size;
    assert.ok(info.opset >= 13);
    assert.equal(info.input_layout, 'NHWC');
    assert.equal(info.input_shape, `[N, ${size}, ${size}, 3]`);
    assert.match(info.input_scale, /^1\/255/);
    assert.equal(info.embedding_dim, tinyTriarchyParams.embedding_dim);
    assert.equal(info.num_params, ctx.recorded.params, 'the ONNX graph holds what the TF.js inference model holds');
    assert.equal(typeof ctx.recorded.onnx_max_abs_diff, 'number');
    // The fixture's embeddings reach ~100 (BN statistics of one batch): the agreement is relative to their size.
    const line = ctx.logs.find((l) => /model\.onnx: onnxruntime matches TF\.js/.test(l));
    const maxAbs = Number(/max \|embedding\| ([\d.]+)/.exec(line ?? '')?.[1]);
    assert.ok(maxAbs > 0, `prune logs the embeddings' size: ${line}`);
    const diff = ctx.recorded.onnx_max_abs_diff as number;
    assert.ok(diff / Math.max(1, maxAbs) < 1e-4, `prune's check: ${diff} on embeddings up to ${maxAbs}`);
  } finally {
    ctx.cleanup();
  }
});

test('evaluate: runtime onnx and tfjs give the same metrics and predictions; unset picks onnx', async () => {
  await requireOrt();
  const trained = await responsiveTriarchy();
  const prune = fakeContext(pruneKind, {}, { model: trained });
  await pruneRun(prune);
  const inputs = { model: prune.outputs.model, dataset: CMU_FACES(), splits: await tinySplits() };
  const runs = {
    onnx: fakeContext(evaluateKind, { runtime: 'onnx', flip_average: true }, inputs),
    tfjs: fakeContext(evaluateKind, { runtime: 'tfjs', flip_average: true }, inputs),
    unset: fakeContext(evaluateKind, { flip_average: true }, inputs),
  };
  try {
    for (const ctx of Object.values(runs)) await evaluateRun(ctx);
    const read = (ctx: (typeof runs)['onnx'], f: string) => readFileSync(join(ctx.outputs.report, f), 'utf8');
    const metrics = (ctx: (typeof runs)['onnx']) =>
      JSON.parse(read(ctx, 'metrics.json')) as Record<string, Record<string, number> | number | string>;
    const [mo, mt, mu] = [metrics(runs.onnx), metrics(runs.tfjs), metrics(runs.unset)];
    assert.equal(mo.runtime, 'onnx');
    assert.equal(mt.runtime, 'tfjs');
    assert.equal(runs.onnx.recorded.runtime, 'onnx');
    assert.equal(runs.tfjs.recorded.backend, 'wasm', 'tfjs says which TF.js backend embedded');
    assert.equal(mu.runtime, 'onnx', 'unset runtime: onnx when onnxruntime-node is installed');
    assert.equal(mo.params, mt.params);
    const test = mt.test as Record<string, number>;
    assert.ok(test.median_threshold > 0.1, `distances are not float noise (median ${test.median_threshold})`);
    // Embeddings agree to float rounding: every figure agrees to 1e-6 (the threshold, a distance, to 1e-4).
    const threshold = (m: typeof mo) => (m.threshold as unknown as { value: number }).value;
    assert.ok(Math.abs(threshold(mo) - threshold(mt)) < 1e-4 * Math.max(1, threshold(mt)));
    for (const set of ['test', 'validation']) {
      const [a, b] = [mo[set] as Record<string, unknown>, mt[set] as Record<string, unknown>];
      for (const [key, vb] of Object.entries(b)) {
        const va = a[key];
        if (typeof vb !== 'number') {
          assert.deepEqual(va, vb, `${set}.${key}`);
          continue;
        }
        const tol = key.endsWith('threshold') ? 1e-4 * Math.max(1, Math.abs(vb)) : 1e-6;
        assert.ok(
          typeof va === 'number' && Math.abs(va - vb) <= tol,
          `${set}.${key}: onnx ${JSON.stringify(va)} vs tfjs ${vb}`,
        );
      }
    }
    // The same predictions; the distances agree to float rounding.
    const rows = (ctx: (typeof runs)['onnx']) =>
      read(ctx, 'predictions.csv')
        .trim()
        .split('\n')
        .map((l) => l.split(','));
    const [po, pt] = [rows(runs.onnx), rows(runs.tfjs)];
    assert.deepEqual(po[0], ['image1', 'image2', 'label', 'distance']);
    assert.deepEqual(
      po.map((r) => r.slice(0, 3)),
      pt.map((r) => r.slice(0, 3)),
    );
    for (let i = 1; i < pt.length; i++) {
      const [d1, d2] = [Number(po[i][3]), Number(pt[i][3])];
      assert.ok(Math.abs(d1 - d2) <= 1e-4 * Math.max(1, d2), `row ${i}: distance onnx ${d1} vs tfjs ${d2}`);
    }
    assert.equal(read(runs.unset, 'metrics.json'), read(runs.onnx, 'metrics.json'));
  } finally {
    prune.cleanup();
    for (const ctx of Object.values(runs)) ctx.cleanup();
    rmSync(trained, { recursive: true, force: true });
  }
});

test('evaluate: a model without model.onnx: runtime onnx fails clearly, unset falls back to tfjs and says so', async () => {
  await requireOrt();
  const prune = fakeContext(pruneKind, {}, { model: await tinyTriarchy() });
  await pruneRun(prune);
  // A model directory as prune version 1 wrote it: TF.js files only.
  const old = mkdtempSync(join(tmpdir(), 'old-prune-'));
  cpSync(prune.outputs.model, old, { recursive: true });
  rmSync(join(old, 'model.onnx'));
  const inputs = { model: old, dataset: CMU_FACES(), splits: await tinySplits() };
  const explicit = fakeContext(evaluateKind, { runtime: 'onnx' }, inputs);
  const unset = fakeContext(evaluateKind, {}, inputs);
  try {
    await assert.rejects(
      evaluateRun(explicit),
      /evaluate\.runtime is onnx but .*model\.onnx does not exist; rerun prune .*or set evaluate\.runtime: tfjs/,
    );
    await evaluateRun(unset);
    assert.equal(unset.recorded.runtime, 'tfjs');
    assert.ok(unset.logs.some((l) => /embedding with TF\.js: .*model\.onnx does not exist/.test(l)));
  } finally {
    prune.cleanup();
    explicit.cleanup();
    unset.cleanup();
    rmSync(old, { recursive: true, force: true });
  }
});

test('evaluate: the runtime param is validated (schema enum)', () => {
  assert.throws(() => fakeContext(evaluateKind, { runtime: 'torch' }, {}), /invalid params/);
});
