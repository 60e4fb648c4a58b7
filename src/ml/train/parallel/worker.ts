// One worker thread of a pool: its own TensorFlow.js and wasm instance (own 4 GiB heap), holding the net once
// per shard it computes. A training step computes its shards' forward passes under one tape, hands the
// outputs to the main thread, blocks until the main thread has written the loss's gradient w.r.t. them into
// shared memory, then backpropagates and writes each shard's gradients and BatchNorm batch statistics out.
// Each shard runs through its own copy of the net, so the tape keeps the shards' gradients apart.
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import '../gradients.js';
import { initBackend } from '../../backend/select.js';
import { setBatchStatsSink, type BatchNormParams } from '../../model/ops.js';
import { createPretextNet } from '../../model/pretext.js';
import { createTriarchyNet } from '../../model/triarchy.js';
import { loadInferenceModel } from '../../model/io.js';
import type { TrainableNet } from '../../types.js';
import type { WasmBackendLike } from '../../kernels/wasm-util.js';
import { offsetsOf, reduceAndAdam, type FlatState } from './update.js';
import {
  CTRL_ABORT,
  CTRL_GRADS,
  CTRL_KEYS,
  CTRL_UPSTREAM,
  type FromWorker,
  type IoBuffers,
  type ToWorker,
  type TrainBuffers,
  type WorkerInit,
  flatViews,
} from './protocol.js';
import { adamKernelsFor } from './adam-wasm.js';

type SteppedMessage = Extract<FromWorker, { type: 'stepped' }>;
type Net = TrainableNet & { embed?(x: tf.Tensor4D, batchSize?: number): tf.Tensor2D };

const port = parentPort!;
const init = workerData as WorkerInit;
const send = (m: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);

let onWasm = false;
const replicas: Net[] = [];
let embedder: ((x: tf.Tensor4D, batchSize: number) => tf.Tensor2D) | undefined;
let train:
  | {
      shards: number;
      mine: number[];
      seed: string;
      flat: FlatState;
      state: Float32Array;
      stats: Float32Array;
      control: Int32Array;
      offsets: number[];
      stateOffsets: number[];
    }
  | undefined;
let io: IoBuffers | undefined;
let stale = true;

/** Copies a tensor's values into dest at offset (straight from the wasm heap when on wasm). */
function copyOut(t: tf.Tensor, dest: Float32Array, offset: number): void {
  if (onWasm) dest.set((tf.backend() as unknown as WasmBackendLike).typedArrayFromHeap(t), offset);
  else dest.set(t.dataSync(), offset);
}

/** A tensor holding a copy of view (the cpu backend would keep a reference to shared memory). */
function tensorFrom(view: Float32Array, shape: number[]): tf.Tensor {
  return tf.tensor(onWasm ? view : view.slice(), shape, 'float32');
}

function loadWeights(): void {
  if (!train || !stale) return;
  const { flat, state, offsets, stateOffsets } = train;
  for (const net of replicas) {
    net.trainableVariables().forEach((v, i) => {
      const t = tensorFrom(flat.params.subarray(offsets[i], offsets[i + 1]), v.shape);
      v.assign(t);
      t.dispose();
    });
    net.stateVariables().forEach((v, i) => {
      const t = tensorFrom(state.subarray(stateOffsets[i], stateOffsets[i + 1]), v.shape);
      v.assign(t);
      t.dispose();
    });
  }
  stale = false;
}

/** Blocks until control[slot] reaches `target` (the step is given up when the main thread says so). */
function waitFor(control: Int32Array, slot: number, target: number): void {
  for (;;) {
    if (Atomics.load(control, CTRL_ABORT) !== 0) throw new Error('training step abandoned by the main thread');
    const cur = Atomics.load(control, slot);
    if (cur >= target) return;
    Atomics.wait(control, slot, cur, 1000);
  }
}

interface BnCall {
  p: BatchNormParams;
  count: number;
  mean: tf.Tensor;
  variance: tf.Tensor;
}

type StepMessage = Extract<ToWorker, { type: 'step' }>;
type Work = Array<{ s: number; r: number; rows: [number, number] }>;

function step(m: StepMessage): void {
  if (!train) throw new Error('step before train setup');
  if (m.io) io = m.io;
  if (!io) throw new Error('step without io buffers');
  loadWeights();
  const t = train;
  // This worker's shards that have rows in this batch (a batch smaller than the shard count leaves some empty).
  const work: Work = t.mine.map((s, r) => ({ s, r, rows: m.rows[s] })).filter((j) => j.rows[1] > 0);
  const calls: BnCall[][] = work.map(() => []);
  try {
    let backwardMs = 0;
    let grads: tf.NamedTensorMap = {};
    if (work.length > 0) ({ grads, backwardMs } = shardGradients(m, io, work, calls));
    else send({ type: 'outputs' });
    writeGrads(work, grads);
    const layers = writeStats(work, calls);
    // Every worker's gradients (and the main thread's direct ones) are in: reduce and update this slice.
    Atomics.add(t.control, CTRL_GRADS, 1);
    Atomics.notify(t.control, CTRL_GRADS);
    waitFor(t.control, CTRL_GRADS, m.workers * m.ticket);
    const t0 = performance.now();
    reduceAndAdam(t.flat, t.offsets, t.shards, { ...m.adam, step: m.step }, m.adam.from, m.adam.to);
    stale = true;
    send({ type: 'stepped', ...layers, backwardMs, adamMs: performance.now() - t0 });
  } finally {
    for (const list of calls) for (const call of list) tf.dispose([call.mean, call.variance]);
  }
}

/**
 * Forward passes of the shards in `work` under one tape (each through its own copy of the net), their
 * outputs to shared memory, a wait for the loss's gradient w.r.t. them, backward. Returns the gradients of
 * every copy's variables; the shards' BatchNorm statistics land in `calls`.
 */
function shardGradients(
  m: StepMessage,
  b: IoBuffers,
  work: Work,
  calls: BnCall[][],
): { grads: tf.NamedTensorMap; backwardMs: number } {
  const t = train!;
  const [h, w, c] = m.inputShape;
  const per = h * w * c;
  const x = new Float32Array(b.x);
  const out = new Float32Array(b.out);
  const up = new Float32Array(b.up);
  // Output key k occupies [keyBase[k], keyBase[k] + capacity * dims[k]) of `out` and `up`.
  const keyBase = offsetsOf(b.dims.map((d) => d * b.capacity));
  const at = (k: number, row: number) => keyBase[k] + row * b.dims[k];
  let current: BnCall[] = [];
  let upstreamAt = 0;
  const inputs = work.map((j) =>
    tensorFrom(x.subarray(j.rows[0] * per, (j.rows[0] + j.rows[1]) * per), [j.rows[1], h, w, c]),
  );
  setBatchStatsSink((p, mean, variance, count) => {
    current.push({ p, count, mean: tf.keep(mean), variance: tf.keep(variance) });
  });
  try {
    const { value, grads } = tf.variableGrads(
      () => {
        const outs = work.map((j, i) => {
          replicas[j.r].setStepSeed?.(`${t.seed}:${m.step}:${j.s}`);
          current = calls[i];
          return replicas[j.r].apply(inputs[i] as tf.Tensor4D, true);
        });
        work.forEach((j, i) =>
          b.keys.forEach((key, k) => {
            const o = outs[i][key];
            if (!o) throw new Error(`the net has no output '${key}'`);
            copyOut(o, out, at(k, j.rows[0]));
          }),
        );
        send({ type: 'outputs' });
        waitFor(t.control, CTRL_UPSTREAM, m.ticket);
        upstreamAt = performance.now();
        const mask = Atomics.load(t.control, CTRL_KEYS);
        const terms: tf.Scalar[] = [];
        work.forEach((j, i) =>
          b.keys.forEach((key, k) => {
            if (!(mask & (1 << k))) return;
            const o = outs[i][key];
            const u = tensorFrom(up.subarray(at(k, j.rows[0]), at(k, j.rows[0] + j.rows[1])), o.shape);
            terms.push(tf.sum(tf.mul(o, u)));
          }),
        );
        if (terms.length === 0) throw new Error('the loss has no gradient w.r.t. any output of the net');
        return terms.length === 1 ? terms[0] : tf.addN<tf.Scalar>(terms);
      },
      work.flatMap((j) => replicas[j.r].trainableVariables()),
    );
    value.dispose();
    return { grads, backwardMs: performance.now() - upstreamAt };
  } finally {
    setBatchStatsSink(undefined);
    tf.dispose(inputs);
  }
}

function writeGrads(work: Array<{ s: number; r: number }>, grads: tf.NamedTensorMap): void {
  const t = train!;
  const n = t.flat.params.length;
  const numVars = t.offsets.length - 1;
  // A shard with no rows this step (batch smaller than the shard count) contributes nothing.
  for (const s of t.mine) t.flat.hasGrad.fill(0, s * numVars, (s + 1) * numVars);
  for (const j of work) {
    replicas[j.r].trainableVariables().forEach((v, i) => {
      const g = grads[v.name];
      t.flat.hasGrad[j.s * numVars + i] = g ? 1 : 0;
      if (g) copyOut(g, t.flat.grads, j.s * n + t.offsets[i]);
    });
  }
  tf.dispose(Object.values(grads));
}

function writeStats(
  work: Array<{ s: number; r: number }>,
  calls: BnCall[][],
): Pick<SteppedMessage, 'layers' | 'counts'> {
  const t = train!;
  const ns = t.state.length;
  const counts: Record<number, number[]> = {};
  let layers: Array<{ meanVar: number; varVar: number; momentum: number }> = [];
  work.forEach((j, i) => {
    const index = new Map(replicas[j.r].stateVariables().map((v, k) => [v, k]));
    const mine = calls[i].map((call) => {
      const meanVar = index.get(call.p.movingMean);
      const varVar = index.get(call.p.movingVariance);
      if (meanVar === undefined || varVar === undefined) throw new Error('a BatchNorm layer outside the net');
      copyOut(call.mean, t.stats, j.s * ns + t.stateOffsets[meanVar]);
      copyOut(call.variance, t.stats, j.s * ns + t.stateOffsets[varVar]);
      return { meanVar, varVar, momentum: call.p.momentum };
    });
    counts[j.s] = calls[i].map((call) => call.count);
    layers = mine;
  });
  return { layers, counts };
}

function embed(m: Extract<ToWorker, { type: 'embed' }>): void {
  loadWeights();
  const net = embedder ?? ((x: tf.Tensor4D, bs: number) => replicas[0].embed!(x, bs));
  const e = tf.tidy(() => {
    const x = tf.tensor4d(m.x, [m.n, ...m.inputShape]);
    const e1 = net(x, m.n);
    if (!m.flip) return e1;
    // Mirror along the width axis (axis 2 of NHWC), as ../../eval/embed.ts does.
    return tf.div<tf.Tensor2D>(tf.add(e1, net(tf.reverse(x, 2), m.n)), 2);
  });
  const rows = e.dataSync() as Float32Array;
  const dim = e.shape[1];
  e.dispose();
  send({ type: 'embedded', rows, dim }, [rows.buffer as ArrayBuffer]);
}

function setupTrain(m: Extract<ToWorker, { type: 'train' }>): void {
  const b: TrainBuffers = m.buffers;
  const sizes = replicas[0].trainableVariables().map((v) => v.size);
  const stateSizes = replicas[0].stateVariables().map((v) => v.size);
  train = {
    shards: m.shards,
    mine: m.mine,
    seed: m.seed,
    flat: {
      ...flatViews(
        b,
        sizes.reduce((a, x) => a + x, 0),
        m.shards,
      ),
      hasGrad: new Uint8Array(b.hasGrad),
      kernels: adamKernelsFor(b.memory),
    },
    state: new Float32Array(b.state),
    stats: new Float32Array(b.stats),
    control: new Int32Array(b.control),
    offsets: offsetsOf(sizes),
    stateOffsets: offsetsOf(stateSizes),
  };
  if (m.mine.length > replicas.length)
    throw new Error(`worker holds ${replicas.length} net copies, asked for ${m.mine.length} shards`);
  stale = true;
  // The outputs' names and row shapes, from a one-image inference pass (no state changes).
  const spec = init.spec as Exclude<typeof init.spec, { kind: 'inference' }>;
  const side = spec.options.backbone.inputSize;
  const outputs = tf.tidy(() =>
    Object.entries(replicas[0].apply(tf.zeros([1, side, side, 3]), false)).map(([k, o]) => ({
      key: k,
      tail: o.shape.slice(1),
    })),
  );
  send({
    type: 'ready',
    trainSizes: sizes,
    stateSizes,
    outputKeys: outputs.map((o) => o.key),
    outputTails: outputs.map((o) => o.tail),
  });
}

function handle(m: ToWorker): void {
  switch (m.type) {
    case 'train':
      return setupTrain(m);
    case 'stale':
      stale = true;
      return;
    case 'step':
      return step(m);
    case 'embed':
      return embed(m);
  }
}

async function start(): Promise<void> {
  const info = await initBackend(init.backend);
  onWasm = info.name === 'wasm';
  const spec = init.spec;
  if (spec.kind === 'inference') {
    const model = await loadInferenceModel(spec.dir);
    embedder = (x, bs) => model.embed(x, bs);
  } else {
    for (let i = 0; i < init.replicas; i++)
      replicas.push(spec.kind === 'triarchy' ? createTriarchyNet(spec.options) : createPretextNet(spec.options));
  }
  port.on('message', (m: ToWorker) => {
    try {
      handle(m);
    } catch (e) {
      const err = e as Error;
      send({ type: 'error', message: err?.message ?? String(e), stack: err?.stack });
    }
  });
  send({ type: 'ready' });
}

start().catch((e: unknown) => {
  const err = e as Error;
  send({ type: 'error', message: err?.message ?? String(e), stack: err?.stack });
});
