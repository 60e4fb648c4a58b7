// Conv2DBackpropFilter for wasm: im2col in JS, then a SIMD (or XNNPACK) matmul does the arithmetic.
import { backend_util, type TensorInfo } from '@tensorflow/tfjs-core';
import { simdKernelsFor } from './simd.js';
import { f32, ptr, type KernelArgs, type RawKernel, type WasmBackendLike } from './wasm-util.js';

export function makeConv2DBackpropFilterWasm(transpose: RawKernel, batchMatMul: RawKernel) {
  return function conv2DBackpropFilterWasm(args: KernelArgs): TensorInfo {
    const backend = args.backend as WasmBackendLike;
    const { x, dy } = args.inputs;
    const attrs = args.attrs as {
      strides: [number, number] | number;
      pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
      dataFormat: 'NHWC' | 'NCHW';
      dimRoundingMode?: 'floor' | 'round' | 'ceil';
      filterShape: [number, number, number, number];
    };
    if (attrs.dataFormat === 'NCHW')
      throw new Error('Conv2DBackpropFilter (facepipe wasm kernel): only NHWC is supported');
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterShape,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    const {
      batchSize: N,
      inHeight: H,
      inWidth: W,
      inChannels: C,
      outHeight: OH,
      outWidth: OW,
      outChannels: CO,
      filterHeight: KH,
      filterWidth: KW,
      strideHeight: SH,
      strideWidth: SW,
    } = info;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    const M = N * OH * OW;
    const K = KH * KW * C;
    const pointwise = KH === 1 && KW === 1 && SH === 1 && SW === 1 && top === 0 && left === 0;
    // cols[m, (kh, kw, c)]: the input patch seen by output position m (zero where it falls in the padding).
    let cols: TensorInfo;
    let ownCols = false;
    if (pointwise) {
      cols = { dataId: x.dataId, shape: [M, K], dtype: 'float32' };
    } else {
      cols = backend.makeOutput([M, K], 'float32');
      ownCols = true;
      const cs = f32(backend, cols);
      const xs = f32(backend, x);
      cs.fill(0);
      let m = 0;
      for (let b = 0; b < N; b++) {
        for (let oh = 0; oh < OH; oh++) {
          for (let ow = 0; ow < OW; ow++, m++) {
            const rowOff = m * K;
            for (let kh = 0; kh < KH; kh++) {
              const ih = oh * SH + kh - top;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < KW; kw++) {
                const iw = ow * SW + kw - left;
                if (iw < 0 || iw >= W) continue;
                const xOff = ((b * H + ih) * W + iw) * C;
                const cOff = rowOff + (kh * KW + kw) * C;
                for (let c = 0; c < C; c++) cs[cOff + c] = xs[xOff + c];
              }
            }
          }
        }
      }
    }
    // dW = cols^T @ dy: SIMD rank-1 updates when available, else explicit transpose + wasm matmul (wasm matmul
    // with transposeA is 5-20x slower).
    const simd = simdKernelsFor(backend.wasm.asm.memory);
    if (simd) {
      const dw = backend.makeOutput(attrs.filterShape, 'float32');
      f32(backend, dw).fill(0);
      simd.outer(ptr(backend, cols), ptr(backend, dy), ptr(backend, dw), M, K, CO);
      if (ownCols) backend.disposeData(cols.dataId);
      return dw;
    }
    const colsT = transpose({ inputs: { x: cols }, backend, attrs: { perm: [1, 0] } }) as TensorInfo;
    if (ownCols) backend.disposeData(cols.dataId);
    const a: TensorInfo = { dataId: colsT.dataId, shape: [1, K, M], dtype: 'float32' };
    const b: TensorInfo = { dataId: dy.dataId, shape: [1, M, CO], dtype: 'float32' };
    const out = batchMatMul({
      inputs: { a, b },
      backend,
      attrs: { transposeA: false, transposeB: false },
    }) as TensorInfo;
    backend.disposeData(colsT.dataId);
    return { dataId: out.dataId, shape: attrs.filterShape, dtype: 'float32' };
  };
}

function plainMatMul(backend: WasmBackendLike, batchMatMul: RawKernel, a: TensorInfo, b: TensorInfo): TensorInfo {
  return batchMatMul({ inputs: { a, b }, backend, attrs: { transposeA: false, transposeB: false } }) as TensorInfo;
}

/** `x` viewed as rows x cols, transposed (a new tensor). */
function transpose2d(backend: WasmBackendLike, transpose: RawKernel, x: TensorInfo, rows: number, cols: number) {
  return transpose({ inputs: { x: { ...x, shape: [rows, cols] } }, backend, attrs: { perm: [1, 0] } }) as TensorInfo;
}

/** The three ways to a weight gradient x^T @ dy; each output is the same m-ordered sum, so the bits agree. */
export const WEIGHT_GRAD_WAYS = ['outer', 'transpose-a', 'transpose-b'] as const;
export type WeightGradWay = (typeof WEIGHT_GRAD_WAYS)[number];

/**
 * Picks, per shape, the fastest of the weight-gradient ways by timing each on that shape's first call. Which is
 * fastest depends on the shape and the machine (SIMD rank-1 updates win when m is large; XNNPACK on a transposed
 * operand when m is small and the packed operand's columns many, 2x there), and since every way gives the same
 * bits the pick only changes speed, never a result. `force` pins one way (tests).
 */
class WayTuner<W extends string> {
  readonly picked = new Map<string, W>();
  force: W | undefined;

  /** `free` releases a trial's extra outputs. */
  run(shape: string, ways: Record<W, () => TensorInfo>, free: (out: TensorInfo) => void): TensorInfo {
    if (this.force) return ways[this.force]();
    const pick = this.picked.get(shape);
    if (pick) return ways[pick]();
    // All the trials in the shape's first call, so that the second call already runs at full speed (trials spread
    // over calls made the first several training steps slow). Each way runs twice, in turn, and keeps the faster
    // time: a way's first run pays one-off costs (XNNPACK operator creation, heap growth).
    const names = Object.keys(ways) as W[];
    const best = new Map<W, number>();
    let kept: TensorInfo | undefined;
    for (let round = 0; round < 2; round++)
      for (const way of names) {
        const t0 = performance.now();
        const out = ways[way]();
        const ms = performance.now() - t0;
        best.set(way, Math.min(ms, best.get(way) ?? Infinity));
        if (kept) free(out);
        else kept = out;
      }
    this.picked.set(shape, [...best].reduce((p, q) => (q[1] < p[1] ? q : p))[0]);
    return kept!;
  }
}

export const weightGradTuner = new WayTuner<WeightGradWay>();

/**
 * Wraps the wasm BatchMatMul: transposed operands are transposed explicitly first (far faster in tfjs 4.22), and
 * weight gradients x^T @ dy take the fastest of three bit-identical ways for their shape (WayTuner).
 */
export function makeBatchMatMulNoTranspose(transpose: RawKernel, batchMatMul: RawKernel) {
  return function batchMatMulWasm(args: KernelArgs): TensorInfo {
    const backend = args.backend as WasmBackendLike;
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    if (!transposeA && !transposeB) return batchMatMul(args) as TensorInfo;
    let { a, b } = args.inputs;
    if (transposeA && !transposeB && a.dtype === 'float32' && b.dtype === 'float32') {
      const batchA = a.shape.slice(0, -2).reduce((p, q) => p * q, 1);
      const batchB = b.shape.slice(0, -2).reduce((p, q) => p * q, 1);
      const [m, ci] = a.shape.slice(-2);
      const co = b.shape[b.shape.length - 1];
      const simd = simdKernelsFor(backend.wasm.asm.memory);
      if (simd && batchA === 1 && batchB === 1 && b.shape[b.shape.length - 2] === m) {
        const outShape = [...(a.shape.length >= b.shape.length ? a.shape : b.shape).slice(0, -2), ci, co];
        const ways: Record<WeightGradWay, () => TensorInfo> = {
          outer: () => {
            const out = backend.makeOutput(outShape, 'float32');
            f32(backend, out).fill(0);
            simd.outer(ptr(backend, a), ptr(backend, b), ptr(backend, out), m, ci, co);
            return out;
          },
          'transpose-a': () => {
            const aT = transpose2d(backend, transpose, a, m, ci);
            const out = plainMatMul(backend, batchMatMul, aT, { ...b, shape: [m, co] });
            backend.disposeData(aT.dataId);
            return { ...out, shape: outShape };
          },
          'transpose-b': () => {
            const bT = transpose2d(backend, transpose, b, m, co);
            const outT = plainMatMul(backend, batchMatMul, bT, { ...a, shape: [m, ci] });
            backend.disposeData(bT.dataId);
            const out = transpose2d(backend, transpose, outT, co, ci);
            backend.disposeData(outT.dataId);
            return { ...out, shape: outShape };
          },
        };
        return weightGradTuner.run(`${m},${ci},${co}`, ways, (out) => backend.disposeData(out.dataId));
      }
    }
    const swapLast = (rank: number) => [...Array(rank - 2).keys(), rank - 1, rank - 2];
    if (!transposeA && transposeB && a.dtype === 'float32' && b.dtype === 'float32') {
      const swapped = aTimesBTransposedSwapped(backend, a, b, transpose, batchMatMul);
      if (swapped) return swapped;
    }
    const temps: TensorInfo[] = [];
    if (transposeA) {
      a = transpose({ inputs: { x: a }, backend, attrs: { perm: swapLast(a.shape.length) } }) as TensorInfo;
      temps.push(a);
    }
    if (transposeB) {
      b = transpose({ inputs: { x: b }, backend, attrs: { perm: swapLast(b.shape.length) } }) as TensorInfo;
      temps.push(b);
    }
    const out = batchMatMul({
      inputs: { a, b },
      backend,
      attrs: { ...args.attrs, transposeA: false, transposeB: false },
    }) as TensorInfo;
    for (const t of temps) backend.disposeData(t.dataId);
    return out;
  };
}

/**
 * a @ b^T for 2-D operands (batch 1) as (b @ a^T)^T when that moves fewer numbers. XNNPACK packs its right
 * operand on every call (a fresh tensor never hits its cache), so the cost is transposing and packing b (n x k)
 * against transposing and packing a (m x k) plus transposing the m x n result. Backprop's dx = dy @ W^T has a
 * small m and a large W in the late layers: 2-6x faster there. Each output is the same k-ordered sum either way,
 * so the bits are identical (test/ml/kernels.test.ts). Undefined when the plain order is cheaper.
 */
function aTimesBTransposedSwapped(
  backend: WasmBackendLike,
  a: TensorInfo,
  b: TensorInfo,
  transpose: RawKernel,
  batchMatMul: RawKernel,
): TensorInfo | undefined {
  const batch = (t: TensorInfo) => t.shape.slice(0, -2).reduce((p, q) => p * q, 1);
  if (batch(a) !== 1 || batch(b) !== 1) return undefined;
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.shape.length - 2];
  if (m * k + m * n >= n * k) return undefined;
  const aT = transpose2d(backend, transpose, a, m, k);
  const outT = plainMatMul(backend, batchMatMul, { ...b, shape: [n, k] }, aT);
  backend.disposeData(aT.dataId);
  const out = transpose2d(backend, transpose, outT, n, m);
  backend.disposeData(outT.dataId);
  const outShape = [...(a.shape.length >= b.shape.length ? a.shape : b.shape).slice(0, -2), m, n];
  return { ...out, shape: outShape };
}
