import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../../src/ml/backend/select.js';
import { embedFiles, mirrorNhwc } from '../../src/ml/eval/embed.js';
import {
  decodeOnnxModel,
  ONNX_FILE,
  readOnnxModelInfo,
  samePadding,
  writeOnnxModel,
} from '../../src/ml/export/onnx/index.js';
import { OnnxEmbedder, onnxRuntimeStatus } from '../../src/ml/export/onnx/runtime.js';
import { countParams, createEmbeddingNet, createTriarchyNet, type EmbeddingNet } from '../../src/ml/model/index.js';
import type { BackboneConfig } from '../../src/ml/types.js';
import { packageRoot } from '../../src/core/package-root.js';

let dir: string;
before(async () => {
  await initBackend('wasm');
  const ort = await onnxRuntimeStatus();
  // A missing runtime fails here, loudly: npm ci installs it (optional dependency, no download needed on CPU).
  assert.ok(ort.available, `onnxruntime-node is required by these tests: ${ort.detail}; run npm ci`);
  dir = await mkdtemp(join(tmpdir(), 'facepipe-onnx-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * A freshly initialised net maps every image to the same embedding (activations vanish through ~50 layers of
 * PyTorch-style init), which would make any comparison pass. BN momentum 0 and one training-mode pass set the
 * moving statistics to real activation statistics, so the signal reaches the embedding; gamma and beta are then
 * moved away from 1 and 0 (a little: embeddings stay of order 1-10), so that folding them is tested too.
 */
function calibrate(net: EmbeddingNet, seed: number): void {
  assert.equal(net.backbone.config.bnMomentum, 0, 'calibrate() needs bnMomentum 0');
  const size = net.backbone.config.inputSize;
  tf.tidy(() => {
    net.backbone.apply(tf.randomUniform<tf.Rank.R4>([8, size, size, 3], 0, 1, 'float32', seed), true);
  });
  let i = 0;
  for (const [name, v] of net.namedVariables()) {
    const range = name.endsWith('/gamma') ? [0.9, 1.1] : name.endsWith('/beta') ? [-0.1, 0.1] : undefined;
    if (range) tf.tidy(() => v.assign(tf.randomUniform(v.shape, range[0], range[1], 'float32', seed + ++i)));
  }
}

/**
 * Max |TF.js - onnxruntime| over a seeded batch, and the spread of the embeddings between images (what a
 * distance sees; large when the net is sensitive to its input).
 */
async function compare(net: EmbeddingNet, name: string, n: number): Promise<{ diff: number; spread: number }> {
  const size = net.backbone.config.inputSize;
  const file = join(dir, `${name}.onnx`);
  await writeOnnxModel(net, file);
  const x = tf.randomUniform<tf.Rank.R4>([n, size, size, 3], 0, 1, 'float32', 7);
  const expected = (await net.embed(x).data()) as Float32Array;
  const ort = await OnnxEmbedder.load(file, size);
  try {
    const got = await ort.embedArray((await x.data()) as Float32Array, n);
    assert.equal(got.values.length, expected.length);
    const dim = expected.length / n;
    let diff = 0;
    let spread = 0;
    let scale = 0;
    for (let i = 0; i < expected.length; i++) {
      diff = Math.max(diff, Math.abs(got.values[i] - expected[i]));
      spread = Math.max(spread, Math.abs(expected[i] - expected[i % dim]));
      scale = Math.max(scale, Math.abs(expected[i]));
    }
    console.log(
      `# ${name}: max |TF.js - ORT| ${diff.toExponential(2)}, max |e| ${scale.toFixed(2)}, spread ${spread.toFixed(2)}`,
    );
    return { diff, spread };
  } finally {
    x.dispose();
    await ort.dispose();
  }
}

test('samePadding: TF "same" (odd pixel at the end), output ceil(size / stride)', () => {
  assert.deepEqual(samePadding(64, 3, 2), { before: 0, after: 1, out: 32 });
  assert.deepEqual(samePadding(35, 3, 2), { before: 1, after: 1, out: 18 });
  assert.deepEqual(samePadding(8, 5, 2), { before: 1, after: 2, out: 4 });
  assert.deepEqual(samePadding(7, 5, 1), { before: 2, after: 2, out: 7 });
  assert.deepEqual(samePadding(1, 3, 2), { before: 1, after: 1, out: 1 });
});

test('onnx export: tiny nets, onnxruntime embeddings match TF.js to 1e-4 (even and odd input sizes)', async () => {
  for (const [size, depth] of [
    [32, 0.1],
    [35, 0.5],
  ] as const) {
    const backbone: BackboneConfig = { width: 0.1, depth, inputSize: size, bnMomentum: 0, dropConnect: 0 };
    // A TriarchyNet as prune exports it: the identity head and centres must stay out of the graph.
    const net = createTriarchyNet({ backbone, embeddingDim: 16, numClasses: 4, seed: 3 });
    calibrate(net, 100);
    try {
      const { diff, spread } = await compare(net, `tiny-${size}`, 5);
      assert.ok(spread > 0.1, `the embedding depends on the image (spread ${spread})`);
      assert.ok(diff < 1e-4, `${size} px: max |TF.js - ORT| = ${diff}`);
    } finally {
      net.dispose();
    }
  }
});

test('onnx export: full-size B0 + 512 at 64 px matches TF.js to 1e-4; metadata says layout and scaling', async () => {
  const backbone: BackboneConfig = { width: 1, depth: 1, inputSize: 64, bnMomentum: 0, dropConnect: 0.2 };
  const net = createEmbeddingNet({ backbone, embeddingDim: 512, seed: 5 });
  calibrate(net, 200);
  try {
    const { diff, spread } = await compare(net, 'b0', 4);
    assert.ok(spread > 0.1, `the embedding depends on the image (spread ${spread})`);
    assert.ok(diff < 1e-4, `B0: max |TF.js - ORT| = ${diff}`);

    const file = join(dir, 'b0.onnx');
    const info = await readOnnxModelInfo(file);
    assert.ok(info.opset >= 13, `opset ${info.opset}`);
    assert.equal(info.input_name, 'image');
    assert.equal(info.input_layout, 'NHWC');
    assert.equal(info.input_shape, '[N, 64, 64, 3]');
    assert.match(info.input_scale, /^1\/255/);
    assert.match(info.input_color, /^RGB/);
    assert.equal(info.input_size, 64);
    assert.equal(info.embedding_dim, 512);
    assert.equal(info.num_params, 4_663_420);
    assert.equal(info.num_params, countParams(net));
    assert.deepEqual(info.backbone, backbone);

    // The graph itself: fixed spatial size, symbolic batch, every weight an initializer, no BatchNormalization
    // left (folded), explicit pads only.
    const graph = decodeOnnxModel(await readFile(file)).graph!;
    const dims = (graph.input ?? [])[0].type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
    assert.deepEqual(dims, ['N', 64, 64, 3]);
    const nodes = graph.node ?? [];
    const ops = new Set(nodes.map((nd) => nd.opType));
    assert.ok(!ops.has('BatchNormalization'));
    for (const nd of nodes.filter((x) => x.opType === 'Conv')) {
      assert.ok(!(nd.attribute ?? []).some((a) => a.name === 'auto_pad'), `${nd.name}: explicit pads`);
    }
    const weights = (graph.initializer ?? []).reduce(
      (s, t) => s + (t.dims ?? []).reduce<number>((a, b) => a * Number(b), 1),
      0,
    );
    // Folding BN adds a bias per convolution and drops 4 vectors per BN: fewer stored values, never more.
    assert.ok(weights <= info.num_params, `${weights} stored values`);
  } finally {
    net.dispose();
  }
});

test('onnx export: a file that is not a facepipe ONNX model gets a clear error', async () => {
  const bad = join(dir, ONNX_FILE);
  await (await import('node:fs/promises')).writeFile(bad, 'not protobuf at all');
  await assert.rejects(readOnnxModelInfo(bad), /model\.onnx: (cannot read ONNX model|not a facepipe ONNX model)/);
});

test('mirrorNhwc mirrors along the width axis, as tf.reverse(x, 2)', async () => {
  const x = tf.randomUniform<tf.Rank.R4>([2, 5, 5, 3], 0, 1, 'float32', 3);
  const expected = await tf.reverse(x, 2).data();
  assert.deepEqual(mirrorNhwc((await x.data()) as Float32Array, 2, 5), expected);
  x.dispose();
});

test('embedFiles through onnxruntime (flip averaging included) gives the TF.js embeddings', async () => {
  const backbone: BackboneConfig = { width: 0.25, depth: 0.25, inputSize: 32, bnMomentum: 0, dropConnect: 0 };
  const net = createEmbeddingNet({ backbone, embeddingDim: 8, seed: 9 });
  calibrate(net, 300);
  const file = join(dir, 'files.onnx');
  await writeOnnxModel(net, file);
  const ort = await OnnxEmbedder.load(file, 32);
  const root = join(packageRoot(), 'data', 'cmu-faces', 'an2i');
  const files = ['an2i_left_angry_open_2.pgm', 'an2i_left_angry_sunglasses_2.pgm', 'an2i_left_happy_open_2.pgm'];
  try {
    for (const flipAverage of [false, true]) {
      // batch 2: a full and a partial batch.
      const opts = { inputSize: 32, batchSize: 2, flipAverage };
      const a = await embedFiles(net, root, files, opts);
      const b = await embedFiles(ort, root, files, opts);
      assert.equal(b.dim, 8);
      assert.equal(b.rows.length, 3);
      const diff = Math.max(...a.rows.flatMap((r, i) => [...r].map((v, j) => Math.abs(v - b.rows[i][j]))));
      assert.ok(diff < 1e-4, `flip ${flipAverage}: ${diff}`);
    }
    // Flip averaging changes the embedding (the check above is not vacuous).
    const plain = await embedFiles(ort, root, files, { inputSize: 32, batchSize: 2 });
    const flipped = await embedFiles(ort, root, files, { inputSize: 32, batchSize: 2, flipAverage: true });
    assert.ok(Math.abs(plain.rows[0][0] - flipped.rows[0][0]) > 1e-3);
  } finally {
    await ort.dispose();
    net.dispose();
  }
});
