// Splitting batches for WebGPU: no single tensor may exceed the adapter's maxStorageBufferBindingSize (128 MiB on
// lavapipe; the original recipe's largest activations reach ~800 MB at 256 px, batch 128). Other backends: no cap.
import * as tf from '@tensorflow/tfjs-core';
import { webgpuAdapter } from './webgpu.js';

/** Anything that knows its largest single tensor per image in training (forward or backward). */
export interface ActivationSized {
  largestTensorBytesPerImage(): number;
}

/** The most images per forward/backward chunk on the current backend, or undefined when there is no limit. */
export function imagesPerBinding(net: ActivationSized): number | undefined {
  const limit = tf.getBackend() === 'webgpu' ? webgpuAdapter()?.limits.maxStorageBufferBindingSize : undefined;
  if (!limit) return undefined;
  const per = net.largestTensorBytesPerImage();
  if (per > limit)
    throw new Error(
      `one image makes a ${(per / 2 ** 20).toFixed(0)} MiB tensor, over this WebGPU adapter's ` +
        `maxStorageBufferBindingSize (${(limit / 2 ** 20).toFixed(0)} MiB): lower the input size or use another backend`,
    );
  return Math.floor(limit / per);
}

/**
 * The micro-batch to train `batchSize` images with: the requested one (undefined = whole batch) unless the
 * binding limit needs smaller chunks, which `log` is told (BN statistics are then per chunk).
 */
export function fitMicroBatch(
  requested: number | undefined,
  batchSize: number,
  net: ActivationSized,
  log?: (line: string) => void,
): number | undefined {
  const cap = imagesPerBinding(net);
  if (cap === undefined || cap >= Math.min(requested ?? batchSize, batchSize)) return requested;
  log?.(
    `webgpu: training in micro-batches of ${cap} images, so that no tensor exceeds the adapter's ` +
      `maxStorageBufferBindingSize (batch-norm statistics are then per micro-batch, as with micro_batch)`,
  );
  return cap;
}
