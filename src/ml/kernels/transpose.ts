// Transpose for wasm. tfjs-backend-wasm 4.22's Transpose is a generic element loop (~9 ns per float here), and
// the matmul ways (conv.ts) transpose a few million floats per training step. A permutation that moves a trailing
// group of axes in front of the group before it is a 2-D transpose per leading index ([R, C] -> [C, R], swapping
// the last two axes, NHWC -> NCHW): those run the SIMD 4 x 4 block kernel (simd.ts). Any other permutation, a
// 1-byte dtype, or wasm without SIMD takes the stock kernel. Data movement only: the bits are the stock kernel's.
import { simdKernelsFor } from './simd.js';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { ptr, type KernelArgs, type RawKernel, type WasmBackendLike } from './wasm-util.js';

/** The permutation as `batch` transposes of rows x cols matrices, or undefined when it is not one. */
export function asBatchedTranspose(
  shape: readonly number[],
  perm: readonly number[],
): { batch: number; rows: number; cols: number } | undefined {
  const n = perm.length;
  if (n !== shape.length) return undefined;
  let k = 0;
  while (k < n && perm[k] === k) k++;
  if (k === n) return undefined;
  // perm[k..] must be j, j+1, ..., n-1, k, k+1, ..., j-1 for the j at perm[k].
  const j = perm[k];
  for (let i = k; i < n; i++) {
    const want = i - k < n - j ? j + (i - k) : k + (i - k - (n - j));
    if (perm[i] !== want) return undefined;
  }
  const product = (from: number, to: number) => shape.slice(from, to).reduce((p, q) => p * q, 1);
  return { batch: product(0, k), rows: product(k, j), cols: product(j, n) };
}

export function makeTransposeWasm(stock: RawKernel): RawKernel {
  return function transposeWasm(args: KernelArgs) {
    const backend = args.backend as WasmBackendLike;
    const x: TensorInfo = args.inputs.x;
    const perm = (args.attrs as { perm: number[] }).perm;
    const plan = x.dtype === 'float32' || x.dtype === 'int32' ? asBatchedTranspose(x.shape, perm) : undefined;
    const simd = plan && simdKernelsFor(backend.wasm.asm.memory);
    if (!plan || !simd || plan.rows * plan.cols === 0) return stock(args);
    const out = backend.makeOutput(
      perm.map((p) => x.shape[p]),
      x.dtype,
    );
    const src = ptr(backend, x);
    const dst = ptr(backend, out);
    const bytes = plan.rows * plan.cols * 4;
    for (let b = 0; b < plan.batch; b++) simd.transpose(src + b * bytes, dst + b * bytes, plan.rows, plan.cols, 0, 0);
    return out;
  };
}
