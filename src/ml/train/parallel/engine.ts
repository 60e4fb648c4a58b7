// Sharded data-parallel training steps for trainNet (../trainer.ts). The batch is split into a fixed number of
// shards (a training param, part of the cache key); W worker threads compute them, each shard through its own
// copy of the net, so each shard's BatchNorm batch statistics and gradients are its own whatever the worker.
// One step:
//   main: batch -> shared memory; workers: forward of their shards, outputs -> shared memory, then wait;
//   main: loss on the whole batch (triplet mining sees every shard), its gradient w.r.t. the outputs and the
//         variables it uses directly (class centres) -> shared memory, wake the workers;
//   workers: backward, each shard's gradients and batch statistics -> shared memory; once all are written
//            (a barrier in shared memory), each reduces the shards' gradients in shard order and applies Adam
//            to its slice of the elements;
//   main: moving statistics from the shards' batch statistics, as one whole-batch BatchNorm.
// The worker count W only schedules this work: the bits are the same for any W (tests check 1 and 2).
import * as tf from '@tensorflow/tfjs-core';
import type { TrainBatch } from '../../data/batches.js';
import type { EmbedOptions, FileEmbedder } from '../../eval/embed.js';
import type { WasmBackendLike } from '../../kernels/wasm-util.js';
import type { BackendName } from '../../types.js';
import type { Adam } from '../adam.js';
import type { EngineState, StepEngine } from '../trainer.js';
import { WorkerPool } from './pool.js';
import {
  CTRL_ABORT,
  CTRL_GRADS,
  CTRL_KEYS,
  CTRL_SLOTS,
  CTRL_UPSTREAM,
  type FromWorker,
  type IoBuffers,
  type NetSpec,
  type TrainBuffers,
  flatViews,
} from './protocol.js';
import { sharedMemory } from './adam-wasm.js';
import {
  foldBatchStats,
  offsetsOf,
  shardOrder,
  shardRows,
  workerElements,
  workerShards,
  type BnLayer,
} from './update.js';

export interface ShardedEngineOptions {
  spec: Exclude<NetSpec, { kind: 'inference' }>;
  /** Shards per batch: fixes the math. */
  shards: number;
  /** Worker threads wanted (e.g. the cores the stage may use); at most `shards` are started. */
  workers: number;
  backend: BackendName;
}

const f32 = (n: number) => new SharedArrayBuffer(4 * Math.max(1, n));

/** Float32 contents of a tensor (a copy). */
const values = (t: tf.Tensor) => t.dataSync() as Float32Array;

/** A batch's pixels: on wasm a view of its heap memory (no 1.2 MB copy per step for the GC), else a copy. */
function batchValues(x: tf.Tensor): Float32Array {
  if (tf.getBackend() !== 'wasm') return values(x);
  return (tf.backend() as unknown as WasmBackendLike).typedArrayFromHeap(x) as Float32Array;
}

export class ShardedEngine implements StepEngine, FileEmbedder {
  private buffers?: TrainBuffers;
  private views?: {
    params: Float32Array;
    m: Float32Array;
    v: Float32Array;
    state: Float32Array;
    direct: Float32Array;
    hasGrad: Uint8Array;
    stats: Float32Array;
    control: Int32Array;
  };
  private offsets: number[] = [];
  private stateOffsets: number[] = [];
  private io?: IoBuffers & { tails: number[][] };
  private ioSent: boolean[] = [];
  private outKeys?: { keys: string[]; tails: number[][] };
  private ticket = 0;
  private s?: EngineState;
  /** Indices of trainable variables the loss uses directly (found on the first step). */
  private direct: number[] = [];
  private dirty = false;
  /** Milliseconds spent in each phase of step() since resetTimings() (for benchmarks). */
  timings: Record<'forward' | 'loss' | 'backward' | 'adam', number> = { forward: 0, loss: 0, backward: 0, adam: 0 };

  private constructor(
    readonly pool: WorkerPool,
    readonly shards: number,
    private readonly spec: ShardedEngineOptions['spec'],
  ) {}

  /** Starts min(workers, shards) worker threads, each holding one copy of the net per shard it computes. */
  static async start(o: ShardedEngineOptions): Promise<ShardedEngine> {
    if (!(Number.isInteger(o.shards) && o.shards >= 1))
      throw new Error(`shards must be a positive integer (got ${o.shards})`);
    const workers = Math.max(1, Math.min(Math.floor(o.workers), o.shards));
    const replicas = Math.max(...Array.from({ length: workers }, (_, w) => workerShards(w, workers, o.shards).length));
    const pool = await WorkerPool.start(o.spec, workers, o.backend, replicas);
    return new ShardedEngine(pool, o.shards, o.spec);
  }

  get workers(): number {
    return this.pool.size;
  }

  async begin(s: EngineState): Promise<void> {
    this.s = s;
    if (!this.buffers) await this.setup(s);
    this.writeWeights(s.trainVars, s.stateVars);
    const v = this.views!;
    s.adam.m.forEach((t, i) => v.m.set(values(t), this.offsets[i]));
    s.adam.v.forEach((t, i) => v.v.set(values(t), this.offsets[i]));
    this.direct = [];
    this.dirty = false;
  }

  /** Copies the main thread's weights into the workers (e.g. after recalibrating BatchNorm there). */
  pushWeights(trainVars: tf.Variable[], stateVars: tf.Variable[]): void {
    if (!this.buffers) throw new Error('pushWeights before the first begin()');
    this.writeWeights(trainVars, stateVars);
  }

  private writeWeights(trainVars: tf.Variable[], stateVars: tf.Variable[]): void {
    const v = this.views!;
    if (trainVars.length !== this.offsets.length - 1 || stateVars.length !== this.stateOffsets.length - 1)
      throw new Error("the variables given do not match the workers' net");
    trainVars.forEach((t, i) => v.params.set(values(t), this.offsets[i]));
    stateVars.forEach((t, i) => v.state.set(values(t), this.stateOffsets[i]));
    for (let i = 0; i < this.pool.size; i++) this.pool.send(i, { type: 'stale' });
  }

  private async setup(s: EngineState): Promise<void> {
    const sizes = s.trainVars.map((t) => t.size);
    const stateSizes = s.stateVars.map((t) => t.size);
    this.offsets = offsetsOf(sizes);
    this.stateOffsets = offsetsOf(stateSizes);
    const n = this.offsets[sizes.length];
    const ns = this.stateOffsets[stateSizes.length];
    // Regions of the shared memory, 16-byte aligned (the SIMD kernels load 4 floats at a time).
    const floats = (len: number) => Math.ceil(len / 4) * 16;
    const at = { params: 0, m: floats(n), v: 2 * floats(n), direct: 3 * floats(n), grads: 4 * floats(n) };
    const b: TrainBuffers = {
      memory: sharedMemory(at.grads + floats(this.shards * n)),
      at,
      state: f32(ns),
      hasGrad: new SharedArrayBuffer((this.shards + 1) * sizes.length),
      stats: f32(this.shards * ns),
      control: new SharedArrayBuffer(4 * CTRL_SLOTS),
    };
    this.buffers = b;
    const flat = flatViews(b, n, this.shards);
    this.views = {
      params: flat.params,
      m: flat.m,
      v: flat.v,
      state: new Float32Array(b.state, 0, ns),
      direct: flat.direct,
      hasGrad: new Uint8Array(b.hasGrad),
      stats: new Float32Array(b.stats, 0, this.shards * ns),
      control: new Int32Array(b.control),
    };
    const W = this.pool.size;
    const ready = await this.pool.all(
      (w) => ({ type: 'train', buffers: b, shards: this.shards, mine: workerShards(w, W, this.shards), seed: s.seed }),
      'ready',
    );
    for (const r of ready)
      if (r.trainSizes?.join() !== sizes.join() || r.stateSizes?.join() !== stateSizes.join())
        throw new Error("the workers' net does not match the variables being trained");
    this.outKeys = { keys: ready[0].outputKeys!, tails: ready[0].outputTails! };
  }

  private ensureIo(n: number, per: number): IoBuffers & { tails: number[][] } {
    const { keys, tails } = this.outKeys!;
    const dims = tails.map((t) => t.reduce((a, b) => a * b, 1));
    if (this.io && this.io.capacity >= n && this.io.x.byteLength >= 4 * n * per) return this.io;
    const cap = Math.max(n, this.io?.capacity ?? 0);
    const rowFloats = dims.reduce((a, b) => a + b, 0);
    this.io = {
      capacity: cap,
      x: f32(cap * per),
      keys,
      dims,
      out: f32(cap * rowFloats),
      up: f32(cap * rowFloats),
      tails,
    };
    this.ioSent = this.ioSent.map(() => false);
    return this.io;
  }

  async step(batch: TrainBatch, lr: number): Promise<{ loss: number; parts: Record<string, number> }> {
    const s = this.s;
    const v = this.views;
    if (!s || !v) throw new Error('step before begin()');
    const t0 = performance.now();
    const [n, h, w, c] = batch.x.shape;
    const per = h * w * c;
    const io = this.ensureIo(n, per);
    // The shared buffers hold the batch in shard order; the loss sees it in the batch's own order.
    const order = shardOrder(n, this.shards);
    const x = batchValues(batch.x);
    const xs = new Float32Array(io.x);
    order.forEach((row, k) => xs.set(x.subarray(row * per, (row + 1) * per), k * per));
    const step = s.adam.step + 1;
    const ticket = ++this.ticket;
    const rows = shardRows(n, this.shards);
    const W = this.pool.size;
    const a = s.adam;
    const outputs = Array.from({ length: W }, (_, i) => this.pool.expect(i, 'outputs'));
    const stepped = Array.from({ length: W }, (_, i) => this.pool.expect(i, 'stepped'));
    for (let i = 0; i < W; i++) {
      const sendIo = !this.ioSent[i];
      this.ioSent[i] = true;
      const [from, to] = workerElements(i, W, v.params.length);
      this.pool.send(i, {
        type: 'step',
        step,
        ticket,
        workers: W,
        adam: { lr, beta1: a.beta1, beta2: a.beta2, epsilon: a.epsilon, from, to },
        rows,
        inputShape: [h, w, c],
        io: sendIo ? io : undefined,
      });
    }
    let result: { loss: number; parts: Record<string, number> };
    try {
      await Promise.all(outputs);
      const t1 = performance.now();
      this.timings.forward += t1 - t0;
      result = this.lossAndUpstream(batch, order, io, s);
      this.timings.loss += performance.now() - t1;
    } catch (e) {
      Atomics.store(v.control, CTRL_ABORT, 1);
      Atomics.notify(v.control, CTRL_UPSTREAM);
      throw e;
    }
    // The workers backpropagate, meet once every gradient is written, and each updates its slice.
    Atomics.store(v.control, CTRL_UPSTREAM, ticket);
    Atomics.notify(v.control, CTRL_UPSTREAM);
    const reports = await Promise.all(stepped);
    this.timings.backward += Math.max(...reports.map((r) => r.backwardMs));
    this.timings.adam += Math.max(...reports.map((r) => r.adamMs));
    // Moving statistics before the next step (the workers load them then).
    this.foldStats(reports);
    a.step = step;
    this.dirty = true;
    return result;
  }

  /** The loss on the whole batch; writes its gradients w.r.t. the outputs and directly used variables. */
  private lossAndUpstream(
    batch: TrainBatch,
    order: number[],
    io: IoBuffers & { tails: number[][] },
    s: EngineState,
  ): { loss: number; parts: Record<string, number> } {
    const v = this.views!;
    const n = order.length;
    const out = new Float32Array(io.out);
    const up = new Float32Array(io.up);
    const keyBase = offsetsOf(io.dims.map((d) => d * io.capacity));
    // Variables the loss reads directly must be current here (the workers hold the truth).
    for (const i of this.direct) {
      const t = tf.tensor(v.params.slice(this.offsets[i], this.offsets[i + 1]), s.trainVars[i].shape);
      s.trainVars[i].assign(t);
      t.dispose();
    }
    const uid = Math.random().toString(36).slice(2);
    const outVars: Record<string, tf.Variable> = {};
    io.keys.forEach((key, k) => {
      const d = io.dims[k];
      const rows = new Float32Array(n * d);
      order.forEach((row, j) => rows.set(out.subarray(keyBase[k] + j * d, keyBase[k] + (j + 1) * d), row * d));
      const t = tf.tensor(rows, [n, ...io.tails[k]]);
      outVars[key] = tf.variable(t, true, `sharded_out_${key}_${uid}`);
      t.dispose();
    });
    let kept: Record<string, tf.Scalar> = {};
    try {
      const { value, grads } = tf.variableGrads(() => {
        const r = s.loss({ ...outVars }, batch);
        kept = Object.fromEntries(Object.entries(r.parts).map(([k, t]) => [k, tf.keep(t)]));
        return r.total;
      }, [...Object.values(outVars), ...s.trainVars]);
      const loss = value.dataSync()[0];
      const parts = Object.fromEntries(Object.entries(kept).map(([k, t]) => [k, t.dataSync()[0]]));
      let mask = 0;
      io.keys.forEach((key, k) => {
        const g = grads[outVars[key].name];
        if (!g) return;
        mask |= 1 << k;
        const d = io.dims[k];
        const gv = values(g);
        order.forEach((row, j) => up.set(gv.subarray(row * d, (row + 1) * d), keyBase[k] + j * d));
      });
      const numVars = s.trainVars.length;
      this.direct = [];
      s.trainVars.forEach((t, i) => {
        const g = grads[t.name];
        v.hasGrad[this.shards * numVars + i] = g ? 1 : 0;
        if (!g) return;
        this.direct.push(i);
        v.direct.set(values(g), this.offsets[i]);
      });
      Atomics.store(v.control, CTRL_KEYS, mask);
      tf.dispose([value, ...Object.values(grads)]);
      return { loss, parts };
    } finally {
      tf.dispose([...Object.values(outVars), ...Object.values(kept)]);
    }
  }

  private foldStats(reports: Array<Extract<FromWorker, { type: 'stepped' }>>): void {
    const v = this.views!;
    const layers: BnLayer[] = reports.find((r) => r.layers.length > 0)?.layers ?? [];
    const counts: number[][] = Array.from({ length: this.shards }, () => []);
    for (const r of reports) for (const [sh, c] of Object.entries(r.counts)) counts[Number(sh)] = c;
    foldBatchStats(v.state, this.stateOffsets, layers, v.stats, counts);
  }

  resetTimings(): void {
    this.timings = { forward: 0, loss: 0, backward: 0, adam: 0 };
  }

  /** Brings the trainer's variables and Adam moments up to date with the workers'. */
  sync(): Promise<void> {
    const s = this.s;
    const v = this.views;
    if (!s || !v || !this.dirty) return Promise.resolve();
    const load = (t: tf.Variable, src: Float32Array) => {
      const x = tf.tensor(src.slice(), t.shape);
      t.assign(x);
      x.dispose();
    };
    s.trainVars.forEach((t, i) => load(t, v.params.subarray(this.offsets[i], this.offsets[i + 1])));
    s.stateVars.forEach((t, i) => load(t, v.state.subarray(this.stateOffsets[i], this.stateOffsets[i + 1])));
    const moments = (src: Float32Array, adam: Adam) =>
      adam.vars.map((t, i) => tf.tensor(src.slice(this.offsets[i], this.offsets[i + 1]), t.shape));
    s.adam.setState(s.adam.step, moments(v.m, s.adam), moments(v.v, s.adam));
    this.dirty = false;
    return Promise.resolve();
  }

  embedFiles(root: string, files: string[], opts: EmbedOptions): Promise<{ dim: number; rows: Float32Array[] }> {
    return this.pool.embedFiles(root, files, opts);
  }

  /** What a log line should say about the parallelism. */
  describe(): string {
    const kind = this.spec.kind;
    return `${kind}: ${this.shards} shard${this.shards === 1 ? '' : 's'} per batch on ${this.pool.size} worker thread${this.pool.size === 1 ? '' : 's'}`;
  }

  close(): Promise<void> {
    // A worker blocked in a step (waiting for the loss's gradient) gives up at once.
    if (this.views) {
      Atomics.store(this.views.control, CTRL_ABORT, 1);
      Atomics.notify(this.views.control, CTRL_UPSTREAM);
      Atomics.notify(this.views.control, CTRL_GRADS);
    }
    return this.pool.close();
  }
}
