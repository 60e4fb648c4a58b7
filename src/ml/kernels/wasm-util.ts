// Minimal typing of the parts of the wasm backend our kernels use (BackendWasm is not exported as a type
// from the package's main entry in a way that resolves under NodeNext).
import type { DataType, TensorInfo } from '@tensorflow/tfjs-core';

/** A WebAssembly.Memory (the project's lib settings carry no WebAssembly typings). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

export interface WasmBackendLike {
  wasm: { asm: { memory: WasmMemory } };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object, force?: boolean): boolean;
}

export type KernelArgs = { inputs: Record<string, TensorInfo>; backend: unknown; attrs?: Record<string, unknown> };
export type RawKernel = (args: KernelArgs) => TensorInfo | TensorInfo[];

/** A Float32 view of a tensor in the wasm heap. Take views only after the last allocation (the heap may grow). */
export function f32(backend: WasmBackendLike, info: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** Byte address of a tensor's data in the wasm heap. */
export function ptr(backend: WasmBackendLike, info: TensorInfo): number {
  const d = backend.dataIdMap.get(info.dataId);
  if (!d) throw new Error('facepipe wasm kernel: tensor data not found in the wasm backend');
  return d.memoryOffset;
}
