// Registers facepipe's fused WebGPU kernels (batch norm, swish) and the multi-tensor Adam hook. Idempotent;
// setWebGpuFusion(false) restores the stock path (for tests and the dispatch-count comparison).
import * as tf from '@tensorflow/tfjs-core';
import type { KernelFunc } from '@tensorflow/tfjs-core';
import { FP_BATCH_NORM_GRAD } from '../batchnorm.js';
import { setFusedAdam } from '../fused-adam.js';
import { adamWebGpu } from './adam.js';
import { batchNormGradWebGpu, batchNormTrainWebGpu } from './batchnorm.js';
import { FP_WG_BATCH_NORM_TRAIN, FP_WG_SWISH, FP_WG_SWISH_GRAD } from './names.js';
import { swishGradWebGpu, swishWebGpu } from './swish.js';

const KERNELS: Array<[string, KernelFunc]> = [
  [FP_WG_BATCH_NORM_TRAIN, batchNormTrainWebGpu],
  [FP_BATCH_NORM_GRAD, batchNormGradWebGpu],
  [FP_WG_SWISH, swishWebGpu],
  [FP_WG_SWISH_GRAD, swishGradWebGpu],
];

/** Kernel names facepipe registers for the webgpu backend. */
export const FACEPIPE_WEBGPU_KERNELS = KERNELS.map(([name]) => name);

export function setWebGpuFusion(on: boolean): void {
  for (const [kernelName, kernelFunc] of KERNELS) {
    const has = tf.getKernel(kernelName, 'webgpu') !== undefined;
    if (on && !has) tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc });
    if (!on && has) tf.unregisterKernel(kernelName, 'webgpu');
  }
  setFusedAdam('webgpu', on ? adamWebGpu : undefined);
}

export function registerWebGpuKernels(): void {
  setWebGpuFusion(true);
}
