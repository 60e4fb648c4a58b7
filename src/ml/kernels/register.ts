// Registers facepipe's wasm kernels: the four gradients stock tfjs-backend-wasm 4.22 lacks (so training works),
// a faster BatchMatMul for transposed operands, a SIMD Transpose, a copy-free Identity, and fused SIMD kernels for training batch
// norm and the swish and squeeze-excitation gate gradients (hand-assembled wasm, src/ml/kernels/simd.ts). Idempotent.
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc } from '@tensorflow/tfjs-core';
import { makeBatchMatMulNoTranspose, makeConv2DBackpropFilterWasm } from './conv.js';
import {
  batchNormGradWasm,
  batchNormTrainWasm,
  FP_BATCH_NORM_GRAD,
  FP_BATCH_NORM_TRAIN,
  FP_SE_GATE_GRAD,
  FP_SWISH_GRAD,
  seGateGradWasm,
  swishGradWasm,
} from './batchnorm.js';
import { makeDepthwiseBackpropSimd } from './depthwise.js';
import { unsortedSegmentSumWasm } from './segment.js';
import { makeTransposeWasm } from './transpose.js';
import type { RawKernel } from './wasm-util.js';

/** Kernel names facepipe registers (or replaces) for the wasm backend. */
export const FACEPIPE_WASM_KERNELS = [
  'UnsortedSegmentSum',
  'Conv2DBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter',
  'BatchMatMul',
  'Transpose',
  'Identity',
  FP_BATCH_NORM_TRAIN,
  FP_BATCH_NORM_GRAD,
  FP_SWISH_GRAD,
  FP_SE_GATE_GRAD,
] as const;

let registered = false;

/** Call after importing @tensorflow/tfjs-backend-wasm (which registers the stock kernels). */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  const stockMatMul = tf.getKernel('BatchMatMul', 'wasm');
  const stockTranspose = tf.getKernel('Transpose', 'wasm');
  if (!stockMatMul || !stockTranspose) {
    throw new Error(
      'registerWasmTrainingKernels: import @tensorflow/tfjs-backend-wasm first (stock wasm kernels missing)',
    );
  }
  const transpose = makeTransposeWasm(stockTranspose.kernelFunc as unknown as RawKernel);
  const matMul = stockMatMul.kernelFunc as unknown as RawKernel;
  const add = (kernelName: string, kernelFunc: RawKernel, setupFunc?: tf.KernelConfig['setupFunc']) => {
    if (tf.getKernel(kernelName, 'wasm')) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as KernelFunc, setupFunc });
  };
  add('UnsortedSegmentSum', unsortedSegmentSumWasm);
  // Keep the stock setupFunc: it binds the C function the stock kernelFunc calls (the fallback).
  add('Transpose', transpose, stockTranspose.setupFunc);
  add('Conv2DBackpropFilter', makeConv2DBackpropFilterWasm(transpose, matMul));
  const dw = makeDepthwiseBackpropSimd();
  add('DepthwiseConv2dNativeBackpropInput', dw.backpropInput);
  add('DepthwiseConv2dNativeBackpropFilter', dw.backpropFilter);
  // Keep the stock setupFunc: it binds the C function the stock kernelFunc calls.
  add('BatchMatMul', makeBatchMatMulNoTranspose(transpose, matMul), stockMatMul.setupFunc);
  // Identity shares the buffer (refcount) instead of copying it, as the cpu backend does. The engine clones every
  // tensor it saves for backprop, so on wasm the stock copy costs a full pass per saved activation.
  // Safe because tfjs tensors are immutable: no kernel writes into its inputs, variables swap buffers on assign.
  const stockIdentity = tf.getKernel('Identity', 'wasm').kernelFunc as unknown as RawKernel;
  add('Identity', (args) => {
    const x = args.inputs.x;
    if (x.dtype === 'string') return stockIdentity(args);
    (args.backend as { incRef(dataId: object): void }).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  });
  // facepipe's own training batch norm (called by src/ml/model/ops.ts on wasm when SIMD is available).
  add(FP_BATCH_NORM_TRAIN, batchNormTrainWasm);
  add(FP_BATCH_NORM_GRAD, batchNormGradWasm);
  add(FP_SWISH_GRAD, swishGradWasm);
  add(FP_SE_GATE_GRAD, seGateGradWasm);
  registered = true;
}
