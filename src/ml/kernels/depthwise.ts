// Depthwise convolution gradients for wasm, NHWC, any stride/dilation/padding/channel multiplier.
// Plain JS loops (channels innermost, contiguous in NHWC) and a SIMD variant for multiplier 1.
import { backend_util, type TensorInfo } from '@tensorflow/tfjs-core';
import { tripleMacFor } from './simd.js';
import { f32, ptr, type KernelArgs, type WasmBackendLike } from './wasm-util.js';

type ConvAttrs = {
  strides: [number, number] | number;
  dilations: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

export function depthwiseBackpropInputWasm(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { dy, filter } = args.inputs;
  const attrs = args.attrs as ConvAttrs & { inputShape: [number, number, number, number] };
  const info = backend_util.computeConv2DInfo(
    attrs.inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides,
    attrs.dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
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
    dilationHeight: DH,
    dilationWidth: DW,
  } = info;
  const mult = CO / C;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const out = backend.makeOutput(info.inShape, 'float32');
  const dx = f32(backend, out);
  const dys = f32(backend, dy);
  const w = f32(backend, filter);
  dx.fill(0);
  for (let b = 0; b < N; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const dyOff = ((b * OH + oh) * OW + ow) * CO;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * SH + kh * DH - top;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * SW + kw * DW - left;
            if (iw < 0 || iw >= W) continue;
            const dxOff = ((b * H + ih) * W + iw) * C;
            const wOff = (kh * KW + kw) * CO;
            if (mult === 1) {
              for (let c = 0; c < C; c++) dx[dxOff + c] += dys[dyOff + c] * w[wOff + c];
            } else {
              for (let c = 0; c < C; c++) {
                let acc = 0;
                for (let m = 0; m < mult; m++) acc += dys[dyOff + c * mult + m] * w[wOff + c * mult + m];
                dx[dxOff + c] += acc;
              }
            }
          }
        }
      }
    }
  }
  return out;
}

export function depthwiseBackpropFilterWasm(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, dy } = args.inputs;
  const attrs = args.attrs as ConvAttrs & { filterShape: [number, number, number, number] };
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    attrs.dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
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
    dilationHeight: DH,
    dilationWidth: DW,
  } = info;
  const mult = CO / C;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Float64 accumulators: the sums run over N*OH*OW terms.
  const acc = new Float64Array(KH * KW * CO);
  const out = backend.makeOutput(attrs.filterShape, 'float32');
  const xs = f32(backend, x);
  const dys = f32(backend, dy);
  for (let b = 0; b < N; b++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const dyOff = ((b * OH + oh) * OW + ow) * CO;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * SH + kh * DH - top;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * SW + kw * DW - left;
            if (iw < 0 || iw >= W) continue;
            const xOff = ((b * H + ih) * W + iw) * C;
            const aOff = (kh * KW + kw) * CO;
            if (mult === 1) {
              for (let c = 0; c < C; c++) acc[aOff + c] += xs[xOff + c] * dys[dyOff + c];
            } else {
              for (let c = 0; c < C; c++) {
                const xv = xs[xOff + c];
                for (let m = 0; m < mult; m++) acc[aOff + c * mult + m] += xv * dys[dyOff + c * mult + m];
              }
            }
          }
        }
      }
    }
  }
  f32(backend, out).set(acc);
  return out;
}

/**
 * Depthwise gradients on the SIMD triple-MAC kernel (src/ml/kernels/simd.ts): JS enumerates the (output, input,
 * weight) row offsets of every valid tap, wasm f32x4 does the channel loops (about 15x faster than the JS loops
 * above, which remain the fallback for channel multipliers > 1 or when wasm SIMD is unavailable).
 */
// eslint-disable-next-line max-lines-per-function -- a hand-written kernel: one loop nest over the image, split it would hide the index arithmetic
export function makeDepthwiseBackpropSimd() {
  const fallback = { backpropInput: depthwiseBackpropInputWasm, backpropFilter: depthwiseBackpropFilterWasm };
  type Info = ReturnType<typeof backend_util.computeConv2DInfo>;
  /**
   * The triples of every valid (b, oh, ow, kh, kw) as (out, a, b) row offsets: they depend on the shapes alone,
   * so they are listed once per shape (a step asks for the same few dozen) and copied into the heap after that.
   */
  const lists = new Map<string, Int32Array>();
  function enumerate(
    backend: WasmBackendLike,
    info: Info,
    kind: 'input' | 'filter',
  ): { triples: TensorInfo; count: number } {
    const key = [kind, info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth]
      .concat([info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth])
      .concat([info.dilationHeight, info.dilationWidth, info.padInfo.top, info.padInfo.left])
      .join(',');
    let list = lists.get(key);
    if (!list) {
      list = listTriples(info, kind);
      // A bound, for a long run with many shapes (batch sizes); a step uses far fewer.
      if (lists.size >= 256) lists.delete(lists.keys().next().value!);
      lists.set(key, list);
    }
    const triples = backend.makeOutput([Math.max(1, list.length)], 'int32');
    (backend.typedArrayFromHeap(triples) as Int32Array).set(list);
    return { triples, count: list.length / 3 };
  }

  function listTriples(info: Info, kind: 'input' | 'filter'): Int32Array {
    const {
      batchSize: N,
      inHeight: H,
      inWidth: W,
      inChannels: C,
      outHeight: OH,
      outWidth: OW,
      filterHeight: KH,
      filterWidth: KW,
      strideHeight: SH,
      strideWidth: SW,
      dilationHeight: DH,
      dilationWidth: DW,
    } = info;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    const t = new Int32Array(N * OH * OW * KH * KW * 3);
    let n = 0;
    for (let b = 0; b < N; b++) {
      for (let oh = 0; oh < OH; oh++) {
        for (let ow = 0; ow < OW; ow++) {
          const dyOff = ((b * OH + oh) * OW + ow) * C;
          for (let kh = 0; kh < KH; kh++) {
            const ih = oh * SH + kh * DH - top;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < KW; kw++) {
              const iw = ow * SW + kw * DW - left;
              if (iw < 0 || iw >= W) continue;
              const xOff = ((b * H + ih) * W + iw) * C;
              const tapOff = (kh * KW + kw) * C;
              if (kind === 'filter') {
                t[n++] = tapOff;
                t[n++] = xOff;
                t[n++] = dyOff;
              } else {
                t[n++] = xOff;
                t[n++] = dyOff;
                t[n++] = tapOff;
              }
            }
          }
        }
      }
    }
    return t.slice(0, n);
  }

  function backpropInput(args: KernelArgs): TensorInfo {
    const backend = args.backend as WasmBackendLike;
    const mac = tripleMacFor(backend.wasm.asm.memory);
    const { dy, filter } = args.inputs;
    const attrs = args.attrs as ConvAttrs & { inputShape: [number, number, number, number] };
    const info = backend_util.computeConv2DInfo(
      attrs.inputShape,
      filter.shape as [number, number, number, number],
      attrs.strides,
      attrs.dilations,
      attrs.pad,
      attrs.dimRoundingMode,
      true,
    );
    if (!mac || info.outChannels !== info.inChannels) return fallback.backpropInput(args);
    const out = backend.makeOutput(info.inShape, 'float32');
    f32(backend, out).fill(0);
    const { triples, count } = enumerate(backend, info, 'input');
    mac(ptr(backend, triples), count, ptr(backend, out), ptr(backend, dy), ptr(backend, filter), info.inChannels);
    backend.disposeData(triples.dataId);
    return out;
  }

  function backpropFilter(args: KernelArgs): TensorInfo {
    const backend = args.backend as WasmBackendLike;
    const mac = tripleMacFor(backend.wasm.asm.memory);
    const { x, dy } = args.inputs;
    const attrs = args.attrs as ConvAttrs & { filterShape: [number, number, number, number] };
    const info = backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      attrs.filterShape,
      attrs.strides,
      attrs.dilations,
      attrs.pad,
      attrs.dimRoundingMode,
      true,
    );
    if (!mac || info.outChannels !== info.inChannels) return fallback.backpropFilter(args);
    const out = backend.makeOutput(attrs.filterShape, 'float32');
    f32(backend, out).fill(0);
    const { triples, count } = enumerate(backend, info, 'filter');
    mac(ptr(backend, triples), count, ptr(backend, out), ptr(backend, x), ptr(backend, dy), info.inChannels);
    backend.disposeData(triples.dataId);
    return out;
  }

  return { backpropInput, backpropFilter };
}
