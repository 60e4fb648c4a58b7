// UnsortedSegmentSum for wasm: the gradient of gather (e.g. centres[labels] in the center loss).
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { KernelArgs, WasmBackendLike } from './wasm-util.js';

export function unsortedSegmentSumWasm(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { x, segmentIds } = args.inputs;
  const numSegments = args.attrs!.numSegments as number;
  const numIds = segmentIds.shape.reduce((a, b) => a * b, 1);
  const outShape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
  const inner = outShape.slice(1).reduce((a, b) => a * b, 1);
  const out = backend.makeOutput(outShape, x.dtype);
  const xs = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  const os = backend.typedArrayFromHeap(out);
  os.fill(0);
  for (let i = 0; i < numIds; i++) {
    const s = ids[i];
    // TensorFlow semantics: ids outside [0, numSegments) are dropped.
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) os[dst + j] += xs[src + j];
  }
  return out;
}
