// Every kernel facepipe registers for wasm, checked against the cpu backend on random shapes.
import { test, before, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers'; // registers the gradients (tfjs-core's Node bundle has none)
import { initBackend } from '../../src/ml/backend/select.js';
import { FACEPIPE_WASM_KERNELS } from '../../src/ml/kernels/register.js';
import { setSimdEnabled } from '../../src/ml/kernels/simd.js';
import { WEIGHT_GRAD_WAYS, weightGradTuner } from '../../src/ml/kernels/conv.js';
import { asBatchedTranspose } from '../../src/ml/kernels/transpose.js';
import { seGate } from '../../src/ml/model/ops.js';

type Input = { values: Float32Array | Int32Array; shape: number[]; dtype: 'float32' | 'int32' };

let seed = 12345;
function rand(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}
function randomInput(shape: number[]): Input {
  const n = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) values[i] = rand() * 2 - 1;
  return { values, shape, dtype: 'float32' };
}
const randInt = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));

async function runOn(backend: string, kernel: string, inputs: Record<string, Input>, attrs: Record<string, unknown>) {
  await tf.setBackend(backend);
  const ts: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(inputs)) ts[k] = tf.tensor(v.values, v.shape, v.dtype);
  const out = tf.engine().runKernel(kernel, ts, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  const result = { shape: out.shape, values: out.dataSync().slice() };
  tf.dispose([out, ...Object.values(ts)]);
  return result;
}

/** Runs on cpu and wasm; asserts same shape and max|diff| / max|ref| <= 1e-4. */
async function compare(kernel: string, inputs: Record<string, Input>, attrs: Record<string, unknown>, label: string) {
  const ref = await runOn('cpu', kernel, inputs, attrs);
  const got = await runOn('wasm', kernel, inputs, attrs);
  assert.deepEqual(got.shape, ref.shape, `${label}: shape`);
  let maxRef = 0;
  let maxDiff = 0;
  for (let i = 0; i < ref.values.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(ref.values[i]));
    maxDiff = Math.max(maxDiff, Math.abs(ref.values[i] - got.values[i]));
  }
  const rel = maxDiff / Math.max(maxRef, 1e-12);
  assert.ok(rel <= 1e-4, `${label}: relative error ${rel.toExponential(2)} > 1e-4`);
}

function convOutShape(
  x: number[],
  k: number,
  stride: number,
  pad: 'same' | 'valid',
  outC: number,
  depthwise: boolean,
  dil = 1,
) {
  const info = tf.backend_util.computeConv2DInfo(
    x as [number, number, number, number],
    [k, k, x[3], depthwise ? outC / x[3] : outC],
    stride,
    dil,
    pad,
    undefined,
    depthwise,
  );
  return info.outShape;
}

before(async () => {
  await initBackend('wasm');
});
afterEach(() => setSimdEnabled(true));

test('every facepipe wasm kernel is registered', () => {
  for (const k of FACEPIPE_WASM_KERNELS) assert.ok(tf.getKernel(k, 'wasm'), `${k} registered for wasm`);
  // The replaced BatchMatMul keeps the stock setupFunc (it binds the C function).
  assert.equal(typeof tf.getKernel('BatchMatMul', 'wasm').setupFunc, 'function');
});

for (const simd of [true, false])
  test(`Conv2DBackpropFilter matches cpu (random shapes, stride 2, same/valid, odd sizes, batch 1) (${simd ? 'SIMD' : 'fallback'} path)`, async () => {
    setSimdEnabled(simd);
    const cases: Array<[number[], number, number, 'same' | 'valid', number]> = [
      [[1, 7, 7, 3], 3, 2, 'same', 5],
      [[2, 9, 8, 4], 3, 1, 'same', 6],
      [[1, 6, 6, 3], 3, 2, 'same', 8], // the EfficientNet stem: even size, stride 2
      [[3, 5, 5, 6], 1, 1, 'valid', 7], // pointwise fast path
      [[2, 11, 11, 2], 5, 2, 'same', 3],
      [[1, 9, 7, 3], 2, 2, 'valid', 4],
    ];
    for (let i = 0; i < 4; i++)
      cases.push([
        [randInt(1, 3), randInt(3, 12), randInt(3, 12), randInt(1, 6)],
        randInt(1, 5),
        randInt(1, 2),
        rand() < 0.5 ? 'same' : 'valid',
        randInt(1, 7),
      ]);
    for (const [xs, k, s, pad, co] of cases) {
      if (pad === 'valid' && (xs[1] < k || xs[2] < k)) continue;
      const dyShape = convOutShape(xs, k, s, pad, co, false);
      await compare(
        'Conv2DBackpropFilter',
        { x: randomInput(xs), dy: randomInput(dyShape) },
        { strides: [s, s], pad, dataFormat: 'NHWC', filterShape: [k, k, xs[3], co] },
        `conv filter x=[${xs}] k=${k} s=${s} ${pad}`,
      );
    }
  });

// Dilation > 1 is not compared: tfjs refuses depthwise gradients with dilation, and the cpu kernels ignore it.
for (const simd of [true, false])
  test(`DepthwiseConv2dNative gradients match cpu (stride 2, same with odd sizes, multipliers, batch 1) (${simd ? 'SIMD' : 'fallback'} path)`, async () => {
    setSimdEnabled(simd);
    const cases: Array<[number[], number, number, 'same' | 'valid', number, number]> = [
      [[1, 7, 7, 4], 3, 2, 'same', 1, 1],
      [[2, 8, 8, 6], 5, 2, 'same', 1, 1], // B0 stride-2 k5 on an even map
      [[2, 9, 9, 3], 5, 1, 'same', 1, 1],
      [[1, 9, 10, 2], 3, 1, 'same', 2, 1], // channel multiplier 2
      [[1, 8, 7, 5], 3, 2, 'valid', 1, 1],
    ];
    for (let i = 0; i < 4; i++)
      cases.push([
        [randInt(1, 3), randInt(5, 12), randInt(5, 12), randInt(1, 8)],
        rand() < 0.5 ? 3 : 5,
        randInt(1, 2),
        rand() < 0.5 ? 'same' : 'valid',
        randInt(1, 2),
        1,
      ]);
    for (const [xs, k, s, pad, mult, dil] of cases) {
      const co = xs[3] * mult;
      const dyShape = convOutShape(xs, k, s, pad, co, true, dil);
      const attrs = { strides: [s, s], dilations: [dil, dil], pad };
      const label = `x=[${xs}] k=${k} s=${s} ${pad} mult=${mult} dil=${dil}`;
      await compare(
        'DepthwiseConv2dNativeBackpropInput',
        { dy: randomInput(dyShape), filter: randomInput([k, k, xs[3], mult]) },
        { ...attrs, inputShape: xs },
        `dw input ${label}`,
      );
      await compare(
        'DepthwiseConv2dNativeBackpropFilter',
        { x: randomInput(xs), dy: randomInput(dyShape) },
        { ...attrs, filterShape: [k, k, xs[3], mult] },
        `dw filter ${label}`,
      );
    }
  });

test('UnsortedSegmentSum matches cpu (repeated ids, empty segments, rank 3, int32)', async () => {
  for (const [shape, numSegments] of [
    [[6, 4], 3],
    [[1, 5], 4],
    [[7, 2, 3], 5],
    [[9, 512], 8],
  ] as Array<[number[], number]>) {
    const ids = new Int32Array(shape[0]);
    for (let i = 0; i < ids.length; i++) ids[i] = randInt(0, numSegments - 2); // last segment stays empty
    const segmentIds: Input = { values: ids, shape: [shape[0]], dtype: 'int32' };
    await compare(
      'UnsortedSegmentSum',
      { x: randomInput(shape), segmentIds },
      { numSegments },
      `segment sum [${shape}]`,
    );
  }
  const xi: Input = { values: Int32Array.from([1, 2, 3, 4, 5, 6]), shape: [3, 2], dtype: 'int32' };
  const idsI: Input = { values: Int32Array.from([1, 1, 0]), shape: [3], dtype: 'int32' };
  const got = await runOn('wasm', 'UnsortedSegmentSum', { x: xi, segmentIds: idsI }, { numSegments: 2 });
  assert.deepEqual([...got.values], [5, 6, 4, 6]);
});

for (const simd of [true, false])
  test(`BatchMatMul with transposes matches cpu (${simd ? 'SIMD' : 'fallback'} path)`, async () => {
    setSimdEnabled(simd);
    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ]) {
      for (const [batch, m, k, n] of [
        [1, 7, 5, 3],
        [3, 4, 9, 6],
        [2, 1, 8, 1],
      ]) {
        const a = randomInput(ta ? [batch, k, m] : [batch, m, k]);
        const b = randomInput(tb ? [batch, n, k] : [batch, k, n]);
        await compare(
          'BatchMatMul',
          { a, b },
          { transposeA: ta, transposeB: tb },
          `matmul b=${batch} ${m}x${k}x${n} tA=${ta} tB=${tb}`,
        );
      }
    }
    // Rank 2, as used by the dense-layer gradients.
    await compare(
      'BatchMatMul',
      { a: randomInput([13, 6]), b: randomInput([13, 4]) },
      { transposeA: true, transposeB: false },
      'matmul rank 2 tA',
    );
    await compare(
      'BatchMatMul',
      { a: randomInput([5, 6]), b: randomInput([4, 6]) },
      { transposeA: false, transposeB: true },
      'matmul rank 2 tB',
    );
  });

test('weight gradients x^T @ dy: each of the three ways matches cpu and gives the same bits; the tuner picks one per shape on its first call', async () => {
  setSimdEnabled(true);
  try {
    for (const [m, ci, co] of [
      [64, 24, 96],
      [7, 5, 3],
      [300, 16, 8],
      // ci % 4 = 0 and co % 8 = 0: the register tiles, here over three row chunks (the last one short).
      [2001, 8, 16],
    ]) {
      const a = randomInput([m, ci]);
      const b = randomInput([m, co]);
      const label = `x^T dy [${m},${ci}]x[${m},${co}]`;
      const outs: Array<Awaited<ReturnType<typeof runOn>>> = [];
      for (const way of WEIGHT_GRAD_WAYS) {
        weightGradTuner.force = way;
        await compare('BatchMatMul', { a, b }, { transposeA: true, transposeB: false }, `${label} ${way}`);
        outs.push(await runOn('wasm', 'BatchMatMul', { a, b }, { transposeA: true, transposeB: false }));
      }
      for (const o of outs.slice(1)) {
        assert.deepEqual(o.shape, [ci, co], label);
        assert.ok(
          o.values.every((v, i) => Object.is(v, outs[0].values[i])),
          `${label}: the ways differ in bits`,
        );
      }
      weightGradTuner.force = undefined;
      // Unforced: the first call times every way (twice) and picks; it frees the trials' extra outputs.
      const shape = `${m},${ci},${co}`;
      assert.equal(weightGradTuner.picked.get(shape), undefined, `${label}: picked before its first call`);
      const tensorsBefore = (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
      for (let i = 0; i < 3; i++) {
        const o = await runOn('wasm', 'BatchMatMul', { a, b }, { transposeA: true, transposeB: false });
        assert.ok(
          o.values.every((v, j) => Object.is(v, outs[0].values[j])),
          `${label}: call ${i} differs`,
        );
        if (i === 0) assert.ok(weightGradTuner.picked.has(shape), `${label}: no pick after the first call`);
      }
      assert.equal(
        (tf.backend() as unknown as { numDataIds(): number }).numDataIds(),
        tensorsBefore,
        `${label}: the trials leaked tensors`,
      );
      assert.ok(WEIGHT_GRAD_WAYS.includes(weightGradTuner.picked.get(`${m},${ci},${co}`)!), `${label}: no pick`);
    }
  } finally {
    weightGradTuner.force = undefined;
  }
});

test('a @ b^T with few rows and a large b (computed as (b @ a^T)^T) matches cpu and is bit-identical to the plain order', async () => {
  for (const [aShape, bShape] of [
    [
      [4, 40],
      [50, 40],
    ],
    [
      [1, 3, 20],
      [1, 30, 20],
    ],
    [
      [2, 64],
      [96, 64],
    ],
  ]) {
    const a = randomInput(aShape);
    const b = randomInput(bShape);
    const label = `matmul [${aShape}]x[${bShape}]^T`;
    await compare('BatchMatMul', { a, b }, { transposeA: false, transposeB: true }, label);
    const swapped = await runOn('wasm', 'BatchMatMul', { a, b }, { transposeA: false, transposeB: true });
    const perm = bShape.length === 2 ? [1, 0] : [0, 2, 1];
    const bT = await runOn('wasm', 'Transpose', { x: b }, { perm });
    const bTInput: Input = { values: bT.values as Float32Array, shape: bT.shape, dtype: 'float32' };
    const plain = await runOn('wasm', 'BatchMatMul', { a, b: bTInput }, { transposeA: false, transposeB: false });
    assert.deepEqual(swapped.shape, plain.shape, label);
    assert.ok(
      swapped.values.every((v, i) => Object.is(v, plain.values[i])),
      `${label}: not bit-identical to a @ transpose(b)`,
    );
  }
});

test('facepipe batch-norm kernels match the textbook formula computed on cpu (odd channel counts, batch 1)', async () => {
  for (const shape of [
    [1, 5, 7, 3],
    [2, 9, 9, 24],
    [4, 10],
    [3, 4, 4, 13],
    [1, 300, 1, 8],
  ]) {
    const c = shape[shape.length - 1];
    const x = randomInput(shape);
    for (let i = 0; i < x.values.length; i++) x.values[i] = x.values[i] * 3 + 2; // mean far from 0
    const dy = randomInput(shape);
    const gamma = randomInput([c]);
    const beta = randomInput([c]);
    const eps = 1e-3;
    const axes = shape.slice(0, -1).map((_, i) => i);
    // Reference on cpu: moments, normalisation, autodiff gradients.
    await tf.setBackend('cpu');
    const ref = tf.tidy(() => {
      const [xt, dyt, g, b] = [x, dy, gamma, beta].map((t) => tf.tensor(t.values, t.shape));
      const f = (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => {
        const { mean, variance } = tf.moments(xi, axes);
        return tf.add(tf.mul(tf.div(tf.sub(xi, mean), tf.sqrt(tf.add(variance, eps))), gi), bi);
      };
      const { mean, variance } = tf.moments(xt, axes);
      const grads = tf.grads((a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => tf.sum(tf.mul(f(a, gg, bb), dyt)))([
        xt,
        g,
        b,
      ]);
      return [f(xt, g, b), mean, variance, ...grads].map((t) => t.dataSync().slice());
    });
    await tf.setBackend('wasm');
    const got = tf.tidy(() => {
      const [xt, dyt, g, b] = [x, dy, gamma, beta].map((t) => tf.tensor(t.values, t.shape));
      const attrs = { epsilon: eps } as unknown as tf.NamedAttrMap;
      const [y, mean, variance] = tf
        .engine()
        .runKernel('FacepipeBatchNormTrain', { x: xt, gamma: g, beta: b }, attrs) as tf.Tensor[];
      const grads = tf
        .engine()
        .runKernel('FacepipeBatchNormGrad', { dy: dyt, x: xt, mean, variance, gamma: g }, attrs) as tf.Tensor[];
      return [y, mean, variance, ...grads].map((t) => t.dataSync().slice());
    });
    const names = ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta'];
    for (let k = 0; k < names.length; k++) {
      let maxRef = 0;
      let maxDiff = 0;
      for (let i = 0; i < ref[k].length; i++) {
        maxRef = Math.max(maxRef, Math.abs(ref[k][i]));
        maxDiff = Math.max(maxDiff, Math.abs(ref[k][i] - got[k][i]));
      }
      assert.ok(
        maxDiff <= 1e-4 * maxRef,
        `[${shape}] ${names[k]}: relative error ${(maxDiff / maxRef).toExponential(2)}`,
      );
    }
  }
});

test('FacepipeSwishGrad matches the swish derivative computed on cpu (length not a multiple of 4)', async () => {
  for (const n of [7, 64, 1001]) {
    const x = randomInput([n]);
    for (let i = 0; i < n; i++) x.values[i] *= 6;
    const dy = randomInput([n]);
    await tf.setBackend('cpu');
    const ref = tf.tidy(() => {
      const xt = tf.tensor(x.values);
      return tf
        .grad((a: tf.Tensor) => tf.sum(tf.mul(tf.mul(a, tf.sigmoid(a)), tf.tensor(dy.values))))(xt)
        .dataSync()
        .slice();
    });
    await tf.setBackend('wasm');
    const got = tf.tidy(() => {
      const xt = tf.tensor(x.values);
      return (
        tf.engine().runKernel('FacepipeSwishGrad', { dy: tf.tensor(dy.values), x: xt, s: tf.sigmoid(xt) }) as tf.Tensor
      )
        .dataSync()
        .slice();
    });
    let maxRef = 0;
    let maxDiff = 0;
    for (let i = 0; i < n; i++) {
      maxRef = Math.max(maxRef, Math.abs(ref[i]));
      maxDiff = Math.max(maxDiff, Math.abs(ref[i] - got[i]));
    }
    assert.ok(maxDiff <= 1e-4 * maxRef, `n=${n}: relative error ${(maxDiff / maxRef).toExponential(2)}`);
  }
});

test("the squeeze-excitation gate: its one-pass wasm gradient (FacepipeSeGateGrad) has the stock gradient's bits", async () => {
  await tf.setBackend('wasm');
  for (const shape of [
    [2, 3, 5, 7],
    [1, 1, 1, 4],
    [3, 4, 4, 8],
    [16, 7, 7, 13],
  ] as const) {
    const [n, , , c] = shape;
    const h = randomInput([...shape]);
    const s = randomInput([n, c]);
    const dy = randomInput([...shape]);
    const grads = () =>
      tf.tidy(() => {
        const f = (a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(seGate(a as tf.Tensor4D, b as tf.Tensor2D), tf.tensor(dy.values, dy.shape)));
        const [dh, ds] = tf.grads(f)([tf.tensor(h.values, h.shape), tf.tensor(s.values, s.shape)]);
        return [dh.dataSync().slice(), ds.dataSync().slice()];
      });
    const kernels = (await tf.profile(() => grads())).kernelNames;
    assert.ok(kernels.includes('FacepipeSeGateGrad'), `${shape}: the SIMD gradient did not run`);
    const [dh, ds] = grads();
    setSimdEnabled(false);
    const stock = await tf.profile(() => grads());
    assert.ok(!stock.kernelNames.includes('FacepipeSeGateGrad'), `${shape}: the stock path ran the SIMD gradient`);
    const [dh0, ds0] = grads();
    setSimdEnabled(true);
    assert.ok(
      dh.every((v, i) => Object.is(v, dh0[i])),
      `${shape}: dh differs from the stock gradient`,
    );
    assert.ok(
      ds.every((v, i) => Object.is(v, ds0[i])),
      `${shape}: ds differs from the stock gradient`,
    );
  }
});

test('Identity on wasm shares the buffer instead of copying, and values stay intact', async () => {
  await tf.setBackend('wasm');
  const x = tf.tensor([1, 2, 3]);
  const y = tf.clone(x);
  x.dispose();
  assert.deepEqual([...y.dataSync()], [1, 2, 3]);
  y.dispose();
});

test('which permutations are batched 2-D transposes (the SIMD Transpose path)', () => {
  assert.deepEqual(asBatchedTranspose([5, 7], [1, 0]), { batch: 1, rows: 5, cols: 7 });
  assert.deepEqual(asBatchedTranspose([2, 3, 4], [0, 2, 1]), { batch: 2, rows: 3, cols: 4 });
  assert.deepEqual(asBatchedTranspose([2, 3, 4, 5], [0, 3, 1, 2]), { batch: 2, rows: 12, cols: 5 });
  assert.deepEqual(asBatchedTranspose([2, 3, 4, 5], [2, 3, 0, 1]), { batch: 1, rows: 6, cols: 20 });
  assert.equal(asBatchedTranspose([2, 3, 4, 5], [0, 2, 1, 3]), undefined, 'a middle swap is not one');
  assert.equal(asBatchedTranspose([2, 3, 4], [2, 1, 0]), undefined, 'a reversal is not one');
  assert.equal(asBatchedTranspose([2, 3], [0, 1]), undefined, 'the identity is not one');
});

test('Transpose: the SIMD kernel gives exactly the stock values for every shape, permutation and 4-byte dtype', async () => {
  const cases: Array<[number[], number[]]> = [
    [
      [5, 7],
      [1, 0],
    ],
    [
      [16, 16],
      [1, 0],
    ],
    [
      [9, 13],
      [1, 0],
    ],
    [
      [1, 1],
      [1, 0],
    ],
    [
      [4, 1],
      [1, 0],
    ],
    [
      [3, 5, 6],
      [0, 2, 1],
    ],
    [
      [2, 3, 4, 5],
      [0, 3, 1, 2],
    ],
    [
      [2, 3, 4, 5],
      [2, 3, 0, 1],
    ],
    [
      [2, 3, 4, 5],
      [0, 2, 1, 3],
    ],
    [
      [3, 4, 2],
      [2, 1, 0],
    ],
    [
      [0, 3],
      [1, 0],
    ],
  ];
  for (const [shape, perm] of cases)
    for (const dtype of ['float32', 'int32'] as const) {
      const n = shape.reduce((a, b) => a * b, 1);
      const values =
        dtype === 'int32' ? Int32Array.from({ length: n }, (_, i) => i * 7 - 3) : randomInput(shape).values;
      const input = { values, shape, dtype };
      const label = `${dtype} [${shape.join(',')}] perm [${perm.join(',')}]`;
      const want = await runOn('cpu', 'Transpose', { x: input }, { perm });
      const got = await runOn('wasm', 'Transpose', { x: input }, { perm });
      assert.deepEqual(got.shape, want.shape, `${label}: shape`);
      assert.ok(
        got.values.length === want.values.length && got.values.every((v, i) => Object.is(v, want.values[i])),
        `${label}: values differ`,
      );
    }
  // Without SIMD the stock kernel runs: same values.
  setSimdEnabled(false);
  try {
    const input = randomInput([6, 10]);
    const stock = await runOn('wasm', 'Transpose', { x: input }, { perm: [1, 0] });
    setSimdEnabled(true);
    const simd = await runOn('wasm', 'Transpose', { x: input }, { perm: [1, 0] });
    assert.ok(
      simd.values.every((v, i) => Object.is(v, stock.values[i])),
      'the SIMD kernel differs from the stock one',
    );
  } finally {
    setSimdEnabled(true);
  }
});

test('the replaced kernels leak no wasm memory', async () => {
  await tf.setBackend('wasm');
  const x = tf.randomUniform([2, 9, 9, 4]);
  const dy = tf.randomUniform([2, 5, 5, 4]);
  const attrs = (o: Record<string, unknown>) => o as unknown as tf.NamedAttrMap;
  // Everything a step creates is inside the tidy: any buffer left afterwards leaked inside a kernel.
  const run = () =>
    tf.tidy(() => {
      tf.engine().runKernel(
        'DepthwiseConv2dNativeBackpropFilter',
        { x, dy },
        attrs({ strides: 2, dilations: 1, pad: 'same', filterShape: [3, 3, 4, 1] }),
      );
      tf.engine().runKernel(
        'DepthwiseConv2dNativeBackpropInput',
        { dy, filter: tf.ones([3, 3, 4, 1]) },
        attrs({ strides: 2, dilations: 1, pad: 'same', inputShape: [2, 9, 9, 4] }),
      );
      tf.engine().runKernel(
        'Conv2DBackpropFilter',
        { x, dy },
        attrs({ strides: 2, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 4, 4] }),
      );
      tf.transpose(x, [0, 3, 1, 2]);
      tf.matMul(tf.reshape(x, [18, 36]), tf.reshape(x, [18, 36]), true, false);
      tf.matMul(tf.reshape(x, [18, 36]), tf.reshape(x, [18, 36]), false, true);
      tf.matMul(tf.reshape(x, [1, 18, 36]), tf.reshape(x, [1, 36, 18]), true, true);
      const g = tf.ones([4]);
      const [, mean, variance] = tf
        .engine()
        .runKernel('FacepipeBatchNormTrain', { x, gamma: g, beta: g }, attrs({ epsilon: 1e-3 })) as tf.Tensor[];
      tf.engine().runKernel('FacepipeBatchNormGrad', { dy: x, x, mean, variance, gamma: g }, attrs({ epsilon: 1e-3 }));
      tf.engine().runKernel(
        'UnsortedSegmentSum',
        { x: tf.ones([3, 2]), segmentIds: tf.tensor1d([0, 1, 0], 'int32') },
        attrs({ numSegments: 2 }),
      );
    });
  run();
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const before = backend.numDataIds();
  for (let i = 0; i < 3; i++) run();
  assert.equal(backend.numDataIds(), before);
  tf.dispose([x, dy]);
});
