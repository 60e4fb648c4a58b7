import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend } from '../../src/ml/backend/select.js';
import {
  countParams,
  createPretextNet,
  createTriarchyNet,
  loadBackboneInto,
  loadInferenceModel,
  loadNet,
  loadNetWeightsInto,
  modelDirHandler,
  saveBackbone,
  saveInferenceModel,
  saveNet,
  TriarchyNet,
} from '../../src/ml/model/index.js';
import type { BackboneConfig } from '../../src/ml/types.js';

const TINY: BackboneConfig = { width: 0.25, depth: 0.25, inputSize: 32, bnMomentum: 0.9, dropConnect: 0.2 };
let dir: string;

before(async () => {
  await initBackend('wasm');
  dir = await mkdtemp(join(tmpdir(), 'facepipe-model-io-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/**
 * One training forward so BN moving statistics are not at their initial values. With bnMomentum 0 they become
 * that batch's statistics: a freshly initialised net then responds to its input (with the initial statistics its
 * activations vanish through the blocks and every image gets the same embedding).
 */
function touchBn(net: { apply(x: tf.Tensor4D, t: boolean): Record<string, tf.Tensor> }) {
  tf.tidy(() => {
    net.apply(tf.randomUniform([4, 32, 32, 3], 0, 1, 'float32', 1) as tf.Tensor4D, true);
  });
}

test('inference model: a TF.js LayersModel, no training heads, same embeddings on wasm and cpu', async () => {
  // depth 0.5: repeated blocks with residual adds are part of the exported graph.
  const backbone = { ...TINY, depth: 0.5, bnMomentum: 0 };
  const net = createTriarchyNet({ backbone, embeddingDim: 16, numClasses: 4, seed: 11 });
  touchBn(net);
  const x = tf.randomUniform([3, 32, 32, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
  const expected = net.embed(x);
  // The comparisons below mean something only if the embedding depends on the image: the three images' embeddings
  // differ by far more than the tolerances used (float32 rounding: 1e-5 relative to the embeddings' size, or 1e-4).
  const rows = expected.arraySync();
  const scale = Math.max(1, ...rows.flat().map(Math.abs));
  for (let i = 1; i < rows.length; i++) {
    const gap = Math.max(...rows[i].map((v, d) => Math.abs(v - rows[0][d])));
    assert.ok(gap > 1e-2 * scale, `image ${i} vs image 0: embeddings differ by only ${gap} (size ${scale})`);
  }
  const out = join(dir, 'inference');
  await saveInferenceModel(net, out);

  const json = JSON.parse(await readFile(join(out, 'model.json'), 'utf8'));
  assert.equal(json.format, 'layers-model');
  assert.equal(json.modelTopology.class_name, 'Model');
  assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
  const names: string[] = json.weightsManifest[0].weights.map((w: { name: string }) => w.name);
  assert.ok(names.includes('embedding/kernel'));
  assert.ok(names.includes('backbone/stem/bn/moving_mean'));
  assert.ok(names.includes('backbone/blocks/0/depthwise/depthwise_kernel'));
  assert.ok(!names.some((n) => n.startsWith('identity') || n === 'centers'), 'no identity head, BN or centres');

  // Any TF.js runtime can load it as a LayersModel.
  const layersModel = await tfl.loadLayersModel(modelDirHandler(out));
  const viaLayers = layersModel.predict(x) as tf.Tensor;
  const viaLayersDiff = maxAbsDiff(viaLayers, expected);
  assert.ok(viaLayersDiff < 1e-5 * scale, `LayersModel.predict equals embed (${viaLayersDiff}, size ${scale})`);
  layersModel.dispose();
  viaLayers.dispose();

  const model = await loadInferenceModel(out);
  assert.equal(model.numParams, countParams(net) - (16 * 4 + 4) - 2 * 4 - 4 * 16);
  assert.equal(json.modelTopology.facepipe.numParams, model.numParams);
  const got = model.embed(x);
  assert.deepEqual(got.shape, [3, 16]);
  assert.ok(maxAbsDiff(got, expected) < 1e-5 * scale);
  model.dispose();

  // Loadable by another backend.
  const xs = x.arraySync();
  await initBackend('cpu');
  const onCpu = await loadInferenceModel(out);
  const xc = tf.tensor4d(xs);
  const gotCpu = onCpu.embed(xc, 2);
  const exp = expected.dataSync();
  const gc = gotCpu.dataSync();
  for (let i = 0; i < exp.length; i++)
    assert.ok(Math.abs(exp[i] - gc[i]) < 1e-5 * scale, `cpu embed ${i}: wasm ${exp[i]} vs cpu ${gc[i]}`);
  onCpu.dispose();
  tf.dispose([xc, gotCpu]);
  await initBackend('wasm');
  tf.dispose([x, expected, got]);
  net.dispose();
});

test('whole training net round-trips (heads, centres, BN statistics) and restores into a live net', async () => {
  const net = createTriarchyNet({ backbone: TINY, embeddingDim: 8, numClasses: 3, seed: 4 });
  touchBn(net);
  const out = join(dir, 'full');
  await saveNet(net, out);
  const loaded = await loadNet(out);
  assert.ok(loaded instanceof TriarchyNet);
  assert.equal(loaded.namedVariables().size, net.namedVariables().size);
  for (const [name, v] of net.namedVariables()) {
    assert.equal(maxAbsDiff(v, loaded.namedVariables().get(name)!), 0, name);
  }
  const x = tf.randomUniform([2, 32, 32, 3]) as tf.Tensor4D;
  const [a, b] = tf.tidy(() => [net.apply(x, false).logits, loaded.apply(x, false).logits]);
  assert.equal(maxAbsDiff(a, b), 0);

  // Checkpoint resume: a fresh net with another seed takes every value.
  const other = createTriarchyNet({ backbone: TINY, embeddingDim: 8, numClasses: 3, seed: 99 });
  assert.ok(maxAbsDiff(other.centers, net.centers) > 0);
  await loadNetWeightsInto(other, out);
  assert.equal(maxAbsDiff(other.centers, net.centers), 0);

  const wrong = createTriarchyNet({ backbone: TINY, embeddingDim: 8, numClasses: 5, seed: 0 });
  await assert.rejects(
    loadNetWeightsInto(wrong, out),
    /identity\/dense\/kernel' has shape \[8,3\] but the net expects \[8,5\]/,
  );
  tf.dispose([x, a, b]);
  [net, loaded, other, wrong].forEach((n) => n.dispose());
});

test('backbone transfer from a pretext net into a Triarchy net (weights and BN moving statistics)', async () => {
  const pretext = createPretextNet({ backbone: TINY, heads: { pose: 4, expression: 4 }, seed: 21 });
  touchBn(pretext);
  const out = join(dir, 'backbone');
  await saveBackbone(pretext, out);
  const tri = createTriarchyNet({ backbone: TINY, embeddingDim: 8, numClasses: 3, seed: 22 });
  const embBefore = tri.embeddingLayer.kernel.dataSync().slice();
  const n = await loadBackboneInto(tri, out);
  let checked = 0;
  for (const [name, v] of pretext.namedVariables()) {
    if (!name.startsWith('backbone/')) continue;
    assert.equal(maxAbsDiff(v, tri.namedVariables().get(name)!), 0, name);
    checked++;
  }
  assert.equal(n, checked);
  const mv = tri.namedVariables().get('backbone/head/bn/moving_variance')!.dataSync();
  assert.ok(
    mv.some((v) => v !== 1),
    'moving statistics were transferred',
  );
  assert.deepEqual(tri.embeddingLayer.kernel.dataSync(), embBefore, 'heads untouched');

  // Also straight from a whole pretext net directory.
  const full = join(dir, 'pretext-full');
  await saveNet(pretext, full);
  const loadedPretext = await loadNet(full);
  assert.deepEqual(Object.keys(loadedPretext.apply(tf.zeros([1, 32, 32, 3]), false)).sort(), [
    'features',
    'logits_expression',
    'logits_pose',
  ]);
  const tri2 = createTriarchyNet({ backbone: TINY, embeddingDim: 8, numClasses: 3, seed: 23 });
  assert.equal(await loadBackboneInto(tri2, full), n);

  const wide = createTriarchyNet({ backbone: { ...TINY, width: 0.5 }, embeddingDim: 8, numClasses: 3, seed: 0 });
  await assert.rejects(loadBackboneInto(wide, out), /width\/depth 0.25\/0.25 does not match the net's 0.5\/0.25/);
  [pretext, tri, tri2, wide, loadedPretext].forEach((x) => x.dispose());
});

test('bad files give errors naming the file', async () => {
  await assert.rejects(loadInferenceModel(join(dir, 'nope')), /nope[/\\]model.json: cannot read model/);
  const other = join(dir, 'other');
  await saveBackbone(createPretextNet({ backbone: TINY, heads: { r: 4 }, seed: 0 }), other);
  await assert.rejects(loadInferenceModel(other), /holds a 'backbone' model/);
  await writeFile(join(other, 'weights.bin'), new Uint8Array(8));
  await assert.rejects(
    loadBackboneInto(createTriarchyNet({ backbone: TINY, embeddingDim: 8, numClasses: 3, seed: 0 }), other),
    /do not belong together/,
  );
});
