/// <reference types="@webgpu/types" />
// Raw compute dispatches on tfjs-backend-webgpu's own device, command encoder and compute pass, for kernels the
// WebGPUProgram API cannot express: several outputs from one dispatch, and read_write bindings (Adam's in-place
// update). Uses the backend's internals as of 4.22 (the last release); checkInternals() fails loudly if they move.
import type { DataType, TensorInfo } from '@tensorflow/tfjs-core';
import * as tf from '@tensorflow/tfjs-core';

interface TensorData {
  resource: GPUBuffer | null;
  values: unknown;
  refCount: number;
}

/** The parts of WebGPUBackend these kernels use. */
export interface WebGpuInternals {
  device: GPUDevice;
  queue: GPUQueue;
  tensorMap: { get(dataId: object): TensorData };
  bufferManager: { acquireBuffer(size: number, usage: number): GPUBuffer };
  uniformPendingDisposal: GPUBuffer[];
  commandQueueOwnedIds: WeakSet<object>;
  commandEncoder: GPUCommandEncoder | null;
  computePassEncoder: GPUComputePassEncoder | null;
  dispatchCountInPass: number;
  uploadToGPU(dataId: object): void;
  makeTensorInfo(shape: number[], dtype: DataType): TensorInfo;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  disposeData(dataId: object): boolean;
}

const NEEDED = [
  'uploadToGPU',
  'makeTensorInfo',
  'ensureCommandEncoderReady',
  'endComputePassEncoder',
  'submitQueue',
  'disposeData',
] as const;

export function checkInternals(backend: unknown): WebGpuInternals {
  const b = backend as Partial<Record<string, unknown>>;
  const missing = NEEDED.filter((k) => typeof b[k] !== 'function');
  if (!b.device || !b.tensorMap || !b.bufferManager || !Array.isArray(b.uniformPendingDisposal) || missing.length)
    throw new Error(
      `facepipe's WebGPU kernels need tfjs-backend-webgpu 4.22's internals (missing: ${missing.join(', ') || 'device/tensorMap/bufferManager'}); ` +
        'pin @tensorflow/tfjs-backend-webgpu to 4.22',
    );
  return backend as WebGpuInternals;
}

export const WORKGROUP = 256;

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

function pipelineFor(device: GPUDevice, code: string): GPUComputePipeline {
  let cache = pipelines.get(device);
  if (!cache) pipelines.set(device, (cache = new Map<string, GPUComputePipeline>()));
  let p = cache.get(code);
  if (!p) {
    p = device.createComputePipeline({
      layout: 'auto',
      compute: { module: device.createShaderModule({ code }), entryPoint: 'main' },
    });
    cache.set(code, p);
  }
  return p;
}

/** A new float32 tensor with its GPU buffer allocated. */
export function makeOutput(b: WebGpuInternals, shape: number[]): TensorInfo {
  const t = b.makeTensorInfo(shape, 'float32');
  b.uploadToGPU(t.dataId);
  return t;
}

export function bufferOf(b: WebGpuInternals, t: TensorInfo): GPUBuffer {
  b.uploadToGPU(t.dataId);
  return b.tensorMap.get(t.dataId).resource!;
}

/**
 * One dispatch of `code` (entry point `main`, group 0): binding i is tensors[i], then the uniform buffer (when
 * `uniforms` is given) at binding tensors.length. Workgroups beyond the per-dimension limit go to y.
 */
export function dispatch(
  b: WebGpuInternals,
  code: string,
  tensors: TensorInfo[],
  workgroups: number,
  uniforms?: ArrayBuffer,
): void {
  const pipeline = pipelineFor(b.device, code);
  const entries: GPUBindGroupEntry[] = tensors.map((t, i) => {
    b.commandQueueOwnedIds.add(t.dataId);
    return { binding: i, resource: { buffer: bufferOf(b, t) } };
  });
  if (uniforms) {
    const size = Math.ceil(uniforms.byteLength / 16) * 16;
    const ub = b.bufferManager.acquireBuffer(size, GPUBufferUsage.COPY_DST | GPUBufferUsage.UNIFORM);
    const padded = new Uint8Array(size);
    padded.set(new Uint8Array(uniforms));
    b.queue.writeBuffer(ub, 0, padded);
    b.uniformPendingDisposal.push(ub);
    entries.push({ binding: tensors.length, resource: { buffer: ub } });
  }
  const bindGroup = b.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
  b.ensureCommandEncoderReady();
  b.computePassEncoder ??= b.commandEncoder!.beginComputePass({});
  b.computePassEncoder.setPipeline(pipeline);
  b.computePassEncoder.setBindGroup(0, bindGroup);
  const max = b.device.limits.maxComputeWorkgroupsPerDimension;
  const x = Math.min(Math.max(workgroups, 1), max);
  b.computePassEncoder.dispatchWorkgroups(x, Math.ceil(Math.max(workgroups, 1) / x));
  b.dispatchCountInPass++;
  if (b.dispatchCountInPass >= tf.env().getNumber('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE')) {
    b.endComputePassEncoder();
    b.submitQueue();
  }
}

/** WGSL: the flat workgroup index of a (possibly 2-D) dispatch; use with `@builtin(num_workgroups) nw`. */
export const FLAT_GROUP = 'let group = wid.y * nw.x + wid.x;';

/** Uniform bytes from numbers: 'u' u32, 'i' i32, 'f' f32, one 4-byte slot each. */
export function packUniforms(types: string, values: number[]): ArrayBuffer {
  const buf = new ArrayBuffer(values.length * 4);
  const dv = new DataView(buf);
  values.forEach((v, i) => {
    const t = types[i] ?? types[types.length - 1];
    if (t === 'f') dv.setFloat32(i * 4, v, true);
    else if (t === 'i') dv.setInt32(i * 4, v, true);
    else dv.setUint32(i * 4, v, true);
  });
  return buf;
}
