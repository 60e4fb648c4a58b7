// Messages and shared buffers between a training/embedding pool (main thread) and its worker threads.
// Bulk data lives in SharedArrayBuffers both sides map; messages only say what to do with it.
import type { BackendName } from '../../types.js';
import type { PretextOptions } from '../../model/pretext.js';
import type { TriarchyOptions } from '../../model/triarchy.js';
import type { SharedMemory } from './adam-wasm.js';

/** What each worker builds: a trainable net (weights then come from the shared buffers) or a saved model. */
export type NetSpec =
  | { kind: 'triarchy'; options: TriarchyOptions }
  | { kind: 'pretext'; options: PretextOptions }
  | { kind: 'inference'; dir: string };

export interface WorkerInit {
  spec: NetSpec;
  backend: BackendName;
  /** Copies of the net a worker holds: one per shard it computes in one step (see worker.ts). */
  replicas: number;
}

/** control[] slots (Int32Array over `control`). */
export const CTRL_UPSTREAM = 0; // step number whose upstream gradients are ready
export const CTRL_ABORT = 1; // non-zero: give up the step in progress
export const CTRL_KEYS = 2; // bit k set: output key k has an upstream gradient
export const CTRL_GRADS = 3; // shards' gradients written: each worker adds 1 per step (a barrier before Adam)
export const CTRL_SLOTS = 4;

/** The flat training state, allocated once per pool (sizes from the net's variables). */
export interface TrainBuffers {
  /**
   * A shared WebAssembly.Memory (./adam-wasm.ts) holding, as float32 at these byte offsets: params, m, v and
   * direct ([params] each) and grads ([shards][params]); the reduction and Adam run on it in place.
   */
  memory: SharedMemory;
  at: { params: number; m: number; v: number; direct: number; grads: number };
  state: SharedArrayBuffer;
  /** Uint8 [shards + 1][numVars]. */
  hasGrad: SharedArrayBuffer;
  /** Float32 [shards][state]: each shard's batch mean / variance at the moving statistics' offsets. */
  stats: SharedArrayBuffer;
  control: SharedArrayBuffer;
}

/** Float32 views of the flat state in `memory` (params has n elements, grads shards * n). */
export function flatViews(
  b: TrainBuffers,
  n: number,
  shards: number,
): { params: Float32Array; m: Float32Array; v: Float32Array; direct: Float32Array; grads: Float32Array } {
  const view = (at: number, len: number) => new Float32Array(b.memory.buffer, at, len);
  return {
    params: view(b.at.params, n),
    m: view(b.at.m, n),
    v: view(b.at.v, n),
    direct: view(b.at.direct, n),
    grads: view(b.at.grads, shards * n),
  };
}

/** One step's batch, the net's outputs and their upstream gradients, [rows][dim] per output key. */
export interface IoBuffers {
  capacity: number;
  x: SharedArrayBuffer;
  keys: string[];
  /** Elements per row of each output key. */
  dims: number[];
  out: SharedArrayBuffer;
  up: SharedArrayBuffer;
}

export type ToWorker =
  | { type: 'train'; buffers: TrainBuffers; shards: number; mine: number[]; seed: string }
  | { type: 'stale' }
  | {
      type: 'step';
      /** Adam step number (1-based), part of the drop-connect seeds. */
      step: number;
      /** Strictly increasing per pool: control[CTRL_UPSTREAM] reaching it means this step's upstream is ready. */
      ticket: number;
      /** Workers in the pool: control[CTRL_GRADS] reaching workers * ticket means every gradient is written. */
      workers: number;
      /** Adam for this step, on the elements [from, to) of the flat parameters. */
      adam: { lr: number; beta1: number; beta2: number; epsilon: number; from: number; to: number };
      rows: Array<[number, number]>;
      inputShape: [number, number, number];
      io?: IoBuffers;
    }
  | { type: 'embed'; x: Float32Array; n: number; inputShape: [number, number, number]; flip: boolean };

export type FromWorker =
  | {
      type: 'ready';
      /** After 'train': the net's variable sizes (checked against the main thread's) and its outputs. */
      trainSizes?: number[];
      stateSizes?: number[];
      outputKeys?: string[];
      /** Shape of one row of each output, e.g. [512]. */
      outputTails?: number[][];
    }
  | { type: 'outputs' }
  | {
      /** The step is done: gradients reduced, this worker's slice of the parameters updated. */
      type: 'stepped';
      /** BatchNorm layers in call order, and per shard of this worker its element count per layer. */
      layers: Array<{ meanVar: number; varVar: number; momentum: number }>;
      counts: Record<number, number[]>;
      /** Milliseconds in backward (after the upstream arrived) and in Adam, for benchmarks. */
      backwardMs: number;
      adamMs: number;
    }
  | { type: 'embedded'; rows: Float32Array; dim: number }
  | { type: 'error'; message: string; stack?: string };
