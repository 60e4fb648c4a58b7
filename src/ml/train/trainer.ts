// Generic training loop shared by the pretext and Triarchy stages: Adam, multi-step LR per epoch,
// seeded batches, epoch checkpoints that resume to the same result, abort between steps,
// optional micro-batching for batches too large for wasm's 4 GiB.
import * as tf from '@tensorflow/tfjs-core';
import './gradients.js';
import type { TrainBatch } from '../data/batches.js';
import { createRng, restoreRng, type Rng, type RngState } from '../data/rng.js';
import type { LossResult } from '../losses/triarchy.js';
import type { TrainableNet } from '../types.js';
import { Adam, multiStepLr, type AdamConfig } from './adam.js';
import { readCheckpoint, readTensor, writeCheckpoint, type CheckpointTensor } from './checkpoint.js';
import { prefetchBatches } from './parallel/prefetch.js';

export type { TrainBatch } from '../data/batches.js';

export type { LossResult };
export type LossFn = (outputs: Record<string, tf.Tensor>, batch: TrainBatch) => LossResult;

export type BatchProvider = (epoch: number, rng: Rng) => AsyncIterable<TrainBatch> | Iterable<TrainBatch>;

export interface StepInfo {
  epoch: number;
  epochs: number;
  /** 1-based step within the epoch. */
  step: number;
  loss: number;
  parts: Record<string, number>;
  lr: number;
}

export interface EpochInfo {
  /** 1-based epoch just finished. */
  epoch: number;
  epochs: number;
  lr: number;
  steps: number;
  /** Mean over the epoch's steps. */
  loss: number;
  parts: Record<string, number>;
  seconds: number;
}

export interface TrainOptions {
  net: TrainableNet;
  /** Extra variables optimised and checkpointed with the net's (e.g. centres kept outside the net). */
  extraVariables?: tf.Variable[];
  /** Batches of one epoch (1-based), drawn from the trainer's RNG. The trainer disposes every batch's tensors. */
  batches: BatchProvider;
  loss: LossFn;
  epochs: number;
  lr: number;
  milestones?: number[];
  /** Default 0.1 (PyTorch's); the recipe uses 0.333. */
  gamma?: number;
  /** The learning rate of each 1-based epoch, instead of lr / milestones / gamma (e.g. a cosine schedule). */
  lrAt?: (epoch: number) => number;
  adam?: AdamConfig;
  /** Seed of the batch/augmentation RNG (default 0). */
  seed?: number | string;
  /** Where the epoch checkpoint lives; an existing checkpoint there is resumed (a damaged one is removed). */
  checkpointDir?: string;
  /**
   * Write the epoch checkpoint only once this many seconds have passed since the last one (the last epoch of the
   * call is always written): short epochs would otherwise spend much of their time saving. Default 0: every epoch.
   */
  checkpointSeconds?: number;
  /** Told when a damaged checkpoint is removed and training restarts from scratch. */
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
  /** Forward/backward in chunks of this many images (see trainStep). */
  microBatch?: number;
  onStep?: (info: StepInfo) => void;
  onEpoch?: (info: EpochInfo) => void | Promise<void>;
  /** Runs the steps elsewhere (e.g. sharded over worker threads, ./parallel/engine.ts); not with microBatch. */
  engine?: StepEngine;
}

/** What a step engine works on; it owns the values from begin() until sync(). */
export interface EngineState {
  trainVars: tf.Variable[];
  stateVars: tf.Variable[];
  adam: Adam;
  loss: LossFn;
  /** Run seed, for the per-step seeds of the net's random masks. */
  seed: string;
}

export interface StepEngine {
  /** Takes over the values (after any checkpoint was restored into them). */
  begin(state: EngineState): Promise<void>;
  /** One optimisation step (advances adam.step). */
  step(batch: TrainBatch, lr: number): Promise<{ loss: number; parts: Record<string, number> }>;
  /** Writes the current values back into the variables and Adam's moments. */
  sync(): Promise<void>;
}

export interface TrainResult {
  /** Epoch the run resumed after (0 = fresh start). */
  resumedFrom: number;
  /** One entry per epoch trained in this call (resumed epochs' entries come from the checkpoint). */
  history: EpochInfo[];
  /** Adam updates applied in total. */
  steps: number;
}

export class AbortError extends Error {
  constructor(message = 'training aborted') {
    super(message);
    this.name = 'AbortError';
  }
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted)
    throw new AbortError(
      signal.reason instanceof Error ? `training aborted: ${signal.reason.message}` : 'training aborted',
    );
}

/** "epoch 3/10, loss 1.23 [id 0.9 tri 0.2 ctr 0.1]" */
export function formatEpoch(info: Pick<EpochInfo, 'epoch' | 'epochs' | 'loss' | 'parts'>): string {
  const parts = Object.entries(info.parts)
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(' ');
  return `epoch ${info.epoch}/${info.epochs}, loss ${fmt(info.loss)}${parts ? ` [${parts}]` : ''}`;
}
const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(3));

export async function trainNet(opts: TrainOptions): Promise<TrainResult> {
  const { net, epochs } = opts;
  if (!(Number.isInteger(epochs) && epochs >= 0))
    throw new Error(`epochs must be a non-negative integer (got ${epochs})`);
  const trainVars = [...net.trainableVariables(), ...(opts.extraVariables ?? [])];
  const stateVars = net.stateVariables();
  const adam = new Adam(trainVars, opts.adam);
  let rng = createRng(opts.seed ?? 0);
  let startEpoch = 0;
  let history: EpochInfo[] = [];
  // The last checkpoint write in flight (its error as a value, so nothing is left unhandled meanwhile).
  let writing: Promise<Error | undefined> = Promise.resolve(undefined);
  const written = async () => {
    const e = await writing;
    writing = Promise.resolve(undefined);
    if (e) throw e;
  };

  try {
    if (opts.checkpointDir) {
      const ck = await readCheckpoint(opts.checkpointDir, undefined, opts.onWarning);
      if (ck) {
        const meta = restoreCheckpoint(ck.tensors, ck.meta, trainVars, stateVars, adam, opts.checkpointDir);
        if (meta.epoch > epochs)
          throw new Error(
            `checkpoint in ${opts.checkpointDir} is at epoch ${meta.epoch}, beyond the ${epochs} epochs asked for; delete it to retrain`,
          );
        startEpoch = meta.epoch;
        history = meta.history;
        rng = restoreRng(meta.rngState);
      }
    }
    const resumedFrom = startEpoch;
    if (opts.engine && opts.microBatch) throw new Error('trainNet: an engine and microBatch cannot be combined');
    const engine = opts.engine;
    await engine?.begin({ trainVars, stateVars, adam, loss: opts.loss, seed: `${opts.seed ?? 0}` });
    let lastSaved = performance.now();
    for (let epoch = startEpoch + 1; epoch <= epochs; epoch++) {
      throwIfAborted(opts.signal);
      const info = await trainEpoch(opts, epoch, rng, { trainVars, stateVars, adam });
      history.push(info);
      const save =
        !!opts.checkpointDir &&
        (epoch === epochs || performance.now() - lastSaved >= 1000 * (opts.checkpointSeconds ?? 0));
      // The engine's values come back only when they are needed: to save them, or when the call ends.
      if (save || epoch === epochs) await engine?.sync();
      if (save && opts.checkpointDir) {
        lastSaved = performance.now();
        // Written while the next epoch trains; trainNet returns or fails only once it is on disk.
        await written();
        const w = await saveCheckpoint(opts.checkpointDir, epoch, trainVars, stateVars, adam, rng.state(), [
          ...history,
        ]);
        writing = w.done.then(
          () => undefined,
          (e: unknown) => (e instanceof Error ? e : new Error(`checkpoint write failed: ${String(e)}`)),
        );
      }
      await opts.onEpoch?.(info);
    }
    await written();
    return { resumedFrom, history, steps: adam.step };
  } finally {
    await writing;
    adam.dispose();
  }
}

/** One epoch's steps (on the engine when there is one); its mean losses. */
async function trainEpoch(
  opts: TrainOptions,
  epoch: number,
  rng: Rng,
  vars: { trainVars: tf.Variable[]; stateVars: tf.Variable[]; adam: Adam },
): Promise<EpochInfo> {
  const { net, engine } = opts;
  const { trainVars, stateVars, adam } = vars;
  const t0 = performance.now();
  const lr = opts.lrAt ? opts.lrAt(epoch) : multiStepLr(opts.lr, epoch, opts.milestones, opts.gamma ?? 0.1);
  let steps = 0;
  let lossSum = 0;
  const partSums: Record<string, number> = {};
  // An engine's step awaits the workers: meanwhile the next batch is prepared here.
  const source = opts.batches(epoch, rng);
  for await (const batch of engine ? prefetchBatches(source) : source) {
    try {
      throwIfAborted(opts.signal);
      const r = engine
        ? await engine.step(batch, lr)
        : await trainStep(net, trainVars, stateVars, batch, opts.loss, adam, lr, opts.microBatch, `${opts.seed ?? 0}`);
      steps++;
      lossSum += r.loss;
      for (const [k, v] of Object.entries(r.parts)) partSums[k] = (partSums[k] ?? 0) + v;
      opts.onStep?.({ epoch, epochs: opts.epochs, step: steps, loss: r.loss, parts: r.parts, lr });
    } finally {
      disposeBatch(batch);
    }
  }
  if (steps === 0) throw new Error(`epoch ${epoch} produced no batches (dataset too small for the batch size?)`);
  const parts = Object.fromEntries(Object.entries(partSums).map(([k, v]) => [k, v / steps]));
  const info: EpochInfo = {
    epoch,
    epochs: opts.epochs,
    lr,
    steps,
    loss: lossSum / steps,
    parts,
    seconds: (performance.now() - t0) / 1000,
  };
  if (!Number.isFinite(info.loss))
    throw new Error(`training diverged at epoch ${epoch}: loss is ${info.loss}; lower the learning rate`);
  return info;
}

function disposeBatch(batch: TrainBatch): void {
  batch.x.dispose();
  for (const t of Object.values(batch.labels)) t.dispose();
}

/**
 * One optimisation step. Without microBatch: forward + loss + backward on the whole batch.
 * With microBatch < batch size: (1) forward every chunk without a tape, (2) loss on the concatenated
 * outputs, its gradient w.r.t. the outputs and w.r.t. variables used directly by the loss (centres),
 * (3) per chunk, forward again under a tape and backprop the chunk's upstream gradient, accumulating.
 * BN moving statistics are restored after pass (1) so they are updated once per chunk (pass 3).
 * BN batch statistics are per chunk in both passes (so BN nets see smaller-batch statistics); the net's
 * random masks agree between the passes when it implements setStepSeed (otherwise the gradient is approximate).
 */
export async function trainStep(
  net: TrainableNet,
  trainVars: tf.Variable[],
  stateVars: tf.Variable[],
  batch: TrainBatch,
  lossFn: LossFn,
  adam: Adam,
  lr: number,
  microBatch?: number,
  seed = '0',
): Promise<{ loss: number; parts: Record<string, number> }> {
  const n = batch.x.shape[0];
  // Per-step seed for the net's stochastic layers; the step count is checkpointed, so resuming replays it.
  const reseed = (chunk: number) => net.setStepSeed?.(`${seed}:${adam.step + 1}:${chunk}`);
  const grads = new Array<tf.Tensor | undefined>(trainVars.length);
  // The loss tensors are read (asynchronously: GPU backends cannot read synchronously) after Adam is queued.
  let pending: tf.Scalar[] = [];
  let partNames: string[] = [];
  const index = new Map(trainVars.map((v, i) => [v.name, i]));
  const addGrads = (named: tf.NamedTensorMap) => {
    for (const [name, g] of Object.entries(named)) {
      const i = index.get(name);
      if (i === undefined) {
        g.dispose();
        continue;
      }
      const prev = grads[i];
      if (prev) {
        grads[i] = tf.keep(tf.add(prev, g));
        prev.dispose();
        g.dispose();
      } else grads[i] = g;
    }
  };
  const readLoss = (value: tf.Scalar, keptParts: Record<string, tf.Scalar>) => {
    partNames = Object.keys(keptParts);
    pending = [value, ...Object.values(keptParts)];
  };

  try {
    if (!microBatch || microBatch >= n) {
      let kept: Record<string, tf.Scalar> = {};
      reseed(0);
      const { value, grads: g } = tf.variableGrads(() => {
        const r = lossFn(net.apply(batch.x, true), batch);
        kept = Object.fromEntries(Object.entries(r.parts).map(([k, t]) => [k, tf.keep(t)]));
        return r.total;
      }, trainVars);
      readLoss(value, kept);
      addGrads(g);
    } else {
      microStep(net, trainVars, stateVars, batch, lossFn, microBatch, addGrads, readLoss, reseed);
    }
    adam.apply(grads, lr);
    const [loss, ...values] = (await Promise.all(pending.map((t) => t.data()))).map((d) => d[0]);
    return { loss, parts: Object.fromEntries(partNames.map((k, i) => [k, values[i]])) };
  } finally {
    for (const g of grads) g?.dispose();
    for (const t of pending) t.dispose();
  }
}

function microStep(
  net: TrainableNet,
  trainVars: tf.Variable[],
  stateVars: tf.Variable[],
  batch: TrainBatch,
  lossFn: LossFn,
  chunk: number,
  addGrads: (g: tf.NamedTensorMap) => void,
  readLoss: (value: tf.Scalar, parts: Record<string, tf.Scalar>) => void,
  reseed: (chunk: number) => void,
): void {
  if (!(Number.isInteger(chunk) && chunk >= 1)) throw new Error(`microBatch must be a positive integer (got ${chunk})`);
  const n = batch.x.shape[0];
  const ranges: Array<[number, number]> = [];
  for (let s = 0; s < n; s += chunk) ranges.push([s, Math.min(chunk, n - s)]);
  const slice = (x: tf.Tensor4D, [s, len]: [number, number]) => tf.slice(x, [s, 0, 0, 0], [len, -1, -1, -1]);

  const saved = stateVars.map((v) => tf.keep(v.clone()));
  const outVars: Record<string, tf.Variable> = {};
  const upstream: Record<string, tf.Tensor> = {};
  try {
    // (1) Outputs of all chunks, no tape.
    const chunks = ranges.map((r, c) => {
      reseed(c);
      return tf.tidy(() => net.apply(slice(batch.x, r), true));
    });
    stateVars.forEach((v, i) => v.assign(saved[i]));
    for (const key of Object.keys(chunks[0])) {
      const joined = tf.concat(chunks.map((c) => c[key]));
      // tf.variable shares the tensor's data; the tensor handle itself must still be disposed.
      outVars[key] = tf.variable(joined, true, `microbatch_out_${key}_${Math.random().toString(36).slice(2)}`);
      joined.dispose();
    }
    for (const c of chunks) for (const t of Object.values(c)) t.dispose();

    // (2) Loss on the whole batch; gradient w.r.t. outputs and variables the loss uses directly.
    let kept: Record<string, tf.Scalar> = {};
    const outList = Object.values(outVars);
    const { value, grads } = tf.variableGrads(() => {
      const r = lossFn({ ...outVars }, batch);
      kept = Object.fromEntries(Object.entries(r.parts).map(([k, t]) => [k, tf.keep(t)]));
      return r.total;
    }, [...outList, ...trainVars]);
    readLoss(value, kept);
    for (const [key, v] of Object.entries(outVars)) {
      const g = grads[v.name];
      if (g) upstream[key] = g;
      delete grads[v.name];
    }
    addGrads(grads);

    // (3) Backprop each chunk's share of the upstream gradient.
    if (Object.keys(upstream).length > 0)
      for (const [c, r] of ranges.entries()) {
        reseed(c);
        const { value: v, grads: g } = tf.variableGrads(() => {
          const out = net.apply(slice(batch.x, r), true);
          const terms = Object.entries(upstream).map(([key, up]) => {
            const u = tf.slice(
              up,
              [r[0], ...new Array<number>(up.rank - 1).fill(0)],
              [r[1], ...new Array<number>(up.rank - 1).fill(-1)],
            );
            return tf.sum(tf.mul(out[key], u));
          });
          return tf.addN(terms) as tf.Scalar;
        }, trainVars);
        v.dispose();
        addGrads(g);
      }
  } finally {
    for (const t of saved) t.dispose();
    for (const v of Object.values(outVars)) v.dispose();
    for (const t of Object.values(upstream)) t.dispose();
  }
}

interface CheckpointMeta {
  format: 'facepipe-train';
  epoch: number;
  adamStep: number;
  rngState: RngState;
  history: EpochInfo[];
  counts: { train: number; state: number };
}

async function saveCheckpoint(
  dir: string,
  epoch: number,
  trainVars: tf.Variable[],
  stateVars: tf.Variable[],
  adam: Adam,
  rngState: RngState,
  history: EpochInfo[],
): Promise<{ done: Promise<unknown> }> {
  const tensors: CheckpointTensor[] = [];
  for (const [i, v] of trainVars.entries()) tensors.push(await readTensor(v, `train/${i}/${v.name}`));
  for (const [i, v] of stateVars.entries()) tensors.push(await readTensor(v, `state/${i}/${v.name}`));
  for (const [i, t] of adam.m.entries()) tensors.push(await readTensor(t, `adam_m/${i}`));
  for (const [i, t] of adam.v.entries()) tensors.push(await readTensor(t, `adam_v/${i}`));
  const meta: CheckpointMeta = {
    format: 'facepipe-train',
    epoch,
    adamStep: adam.step,
    rngState,
    history,
    counts: { train: trainVars.length, state: stateVars.length },
  };
  // The values are copied by now: the write may proceed while training goes on.
  return { done: writeCheckpoint(dir, { meta: meta as unknown as Record<string, unknown>, tensors }) };
}

function restoreCheckpoint(
  tensors: CheckpointTensor[],
  rawMeta: Record<string, unknown>,
  trainVars: tf.Variable[],
  stateVars: tf.Variable[],
  adam: Adam,
  dir: string,
): CheckpointMeta {
  const meta = rawMeta as unknown as CheckpointMeta;
  const mismatch = (why: string): never => {
    throw new Error(`checkpoint in ${dir} does not match this network (${why}); delete it to restart training`);
  };
  if (meta.format !== 'facepipe-train') mismatch('not a facepipe training checkpoint');
  if (meta.counts.train !== trainVars.length || meta.counts.state !== stateVars.length)
    mismatch(`${meta.counts.train}+${meta.counts.state} variables saved, ${trainVars.length}+${stateVars.length} now`);
  const n = trainVars.length;
  const s = stateVars.length;
  if (tensors.length !== 3 * n + s) mismatch('tensor count');
  const toTensor = (t: CheckpointTensor, like: tf.Tensor) => {
    if (t.shape.join(',') !== like.shape.join(','))
      mismatch(`${t.name} has shape [${t.shape}], expected [${like.shape}]`);
    return tf.tensor(t.data, t.shape, like.dtype === 'int32' ? 'int32' : 'float32');
  };
  tf.tidy(() => {
    trainVars.forEach((v, i) => v.assign(toTensor(tensors[i], v)));
    stateVars.forEach((v, i) => v.assign(toTensor(tensors[n + i], v)));
  });
  const m = trainVars.map((v, i) => toTensor(tensors[n + s + i], v));
  const vv = trainVars.map((v, i) => toTensor(tensors[2 * n + s + i], v));
  adam.setState(meta.adamStep, m, vv);
  return meta;
}
