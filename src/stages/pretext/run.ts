import { existsSync } from 'node:fs';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { fitMicroBatch } from '../../ml/backend/binding-limit.js';
import { backendMetrics, initBackend } from '../../ml/backend/select.js';
import { makeBatchProvider, type TrainBatch } from '../../ml/data/batches.js';
import { ImageCache } from '../../ml/data/cache.js';
import { createRng, randInt, shuffleInPlace, type Rng } from '../../ml/data/rng.js';
import { labelSmoothedCrossEntropy } from '../../ml/losses/triarchy.js';
import { createPretextNet, saveBackbone, type PretextNet } from '../../ml/model/index.js';
import { CHECKPOINT_FILE } from '../../ml/train/checkpoint.js';
import {
  formatEpoch,
  trainNet,
  type BatchProvider,
  type EpochInfo,
  type TrainOptions,
} from '../../ml/train/trainer.js';
import type { BackendName, BackendPreference } from '../../ml/types.js';
import type { StageContext, StageRun } from '../../contracts/stage-kind.js';
import { isPlainObject } from '../../core/objects.js';
import { readSealed, writeSealed } from '../../core/sealed.js';
import { readSplits, type Splits, type TrainImage } from '../shared/splits-format.js';
import { CHECKPOINT_SECONDS, trainingEngine, type TrainingEngine } from '../shared/training-engine.js';
import { backboneConfig, learningRate } from '../shared/backbone-params.js';
import { stepReporter } from '../shared/train-progress.js';
import {
  chanceWarning,
  formatFigures,
  heldoutFigures,
  heldoutSet,
  type HeadFigures,
  type HeldoutOptions,
  type HeldoutSet,
} from './heldout.js';
import type { PretextParams } from './kind.js';

/** Rotates each square HWC image of `x` by labels[i] * 90 degrees counter-clockwise. */
export function rotateBatch(x: Float32Array, n: number, size: number, labels: number[]): Float32Array {
  const out = new Float32Array(x.length);
  const per = size * size * 3;
  for (let b = 0; b < n; b++) {
    const k = labels[b] & 3;
    for (let y = 0; y < size; y++) {
      for (let xx = 0; xx < size; xx++) {
        // Destination (y, xx) takes source (sy, sx) of the image rotated k quarter turns.
        let sy = y,
          sx = xx;
        if (k === 1) {
          sy = xx;
          sx = size - 1 - y;
        } else if (k === 2) {
          sy = size - 1 - y;
          sx = size - 1 - xx;
        } else if (k === 3) {
          sy = size - 1 - xx;
          sx = y;
        }
        const d = b * per + (y * size + xx) * 3;
        const s = b * per + (sy * size + sx) * 3;
        out[d] = x[s]!;
        out[d + 1] = x[s + 1]!;
        out[d + 2] = x[s + 2]!;
      }
    }
  }
  return out;
}

/** Attribute label vectors (classes sorted by value) for the attributes that have at least two values. */
function attributeLabels(
  train: TrainImage[],
  names: string[],
): { classes: Record<string, string[]>; labels: Record<string, number[]>; dropped: string[] } {
  const classes: Record<string, string[]> = {};
  const labels: Record<string, number[]> = {};
  const dropped: string[] = [];
  for (const name of names) {
    const values = [...new Set(train.map((t) => t.attributes[name] ?? ''))].sort();
    if (values.length < 2) {
      dropped.push(name);
      continue;
    }
    const index = new Map(values.map((v, i) => [v, i]));
    classes[name] = values;
    labels[name] = train.map((t) => index.get(t.attributes[name] ?? '')!);
  }
  return { classes, labels, dropped };
}

interface Task {
  task: 'attributes' | 'rotation';
  heads: Record<string, number>;
  /** Attribute task: each head's class values, in label order, and the training labels. */
  classes: Record<string, string[]> | null;
  labels: Record<string, number[]>;
}

/** Which task: attribute classes when the split has every listed attribute (with >= 2 values), else rotation. */
function chooseTask(p: PretextParams, splits: Splits): Task {
  const train = splits.train;
  const rotation: Task = { task: 'rotation', heads: { rotation: 4 }, classes: null, labels: {} };
  if (p.task === 'rotation') return rotation;
  const missing = p.attributes.filter(
    (a) => !splits.summary.attributes.includes(a) || train.some((t) => !t.attributes[a]),
  );
  const attrs = attributeLabels(
    train,
    p.attributes.filter((a) => !missing.includes(a)),
  );
  const usable = p.attributes.length > 0 && missing.length === 0 && attrs.dropped.length === 0;
  if (p.task === 'attributes' && !usable) {
    const why =
      p.attributes.length === 0
        ? 'no attributes listed'
        : missing.length
          ? `attributes ${missing.join(', ')} are missing from train.csv (found: ${splits.summary.attributes.join(', ') || 'none'})`
          : `attributes ${attrs.dropped.join(', ')} have a single value`;
    throw new Error(
      `pretext task 'attributes': ${why}; set split.dataset.attribute_pattern, change pretext.attributes, or use task: rotation`,
    );
  }
  if (!usable) return rotation;
  const heads = Object.fromEntries(Object.entries(attrs.classes).map(([k, v]) => [k, v.length]));
  return { task: 'attributes', heads, classes: attrs.classes, labels: attrs.labels };
}

/** Epochs after which to measure held-out accuracy: every `every` epochs and after the last. */
function heldoutEpochs(epochs: number, every: number): number[] {
  const out: number[] = [];
  for (let e = every; e < epochs; e += every) out.push(e);
  out.push(epochs);
  return out;
}

/** Held-out figures per measured epoch: head -> accuracy. */
type Measured = { epoch: number } & Record<string, number | null>;
const STATE_FILE = 'heldout.json';
interface HeldoutState {
  lastMeasured: number;
  measured: Measured[];
}
const isState = (v: unknown): v is HeldoutState =>
  isPlainObject(v) &&
  Number.isInteger(v.lastMeasured) &&
  Array.isArray(v.measured) &&
  v.measured.every(
    (m) =>
      isPlainObject(m) &&
      Number.isInteger(m.epoch) &&
      Object.values(m).every((x) => x === null || typeof x === 'number'),
  );

/**
 * The held-out figures measured before an interruption (sealed in workDir beside the epoch checkpoint). A damaged
 * file means the stage restarts from scratch, saying so: figures of epochs it cannot measure again are not invented.
 */
async function resumeState(
  workDir: string,
  checkpointDir: string,
  say: (l: string) => void,
  restarted: () => void,
): Promise<HeldoutState> {
  const path = join(workDir, STATE_FILE);
  const r = readSealed(path, isState);
  if (r.state === 'ok') return r.value;
  if (r.state === 'bad') {
    say(`warning: ignoring ${path}: ${r.why}; the stage restarts from scratch`);
    await rm(checkpointDir, { recursive: true, force: true });
    await rm(path, { force: true });
    restarted();
  }
  return { lastMeasured: -1, measured: [] };
}

/**
 * Epoch-prefix reuse: the scratch folder as a longer run has it after this run's last epoch: the epoch checkpoint,
 * and the figures of the epochs a longer run measures too (multiples of validate_every; a longer run does not
 * measure after this run's last epoch unless it is one).
 */
async function writeEpochState(dest: string, checkpointDir: string, state: HeldoutState, every: number) {
  const checkpoint = join(checkpointDir, CHECKPOINT_FILE);
  if (!existsSync(checkpoint)) return; // no epoch trained
  await mkdir(join(dest, 'checkpoint'), { recursive: true });
  await copyFile(checkpoint, join(dest, 'checkpoint', CHECKPOINT_FILE));
  const measured = state.measured.filter((m) => m.epoch % every === 0);
  const lastMeasured = Math.max(-1, ...measured.map((m) => m.epoch));
  writeSealed(join(dest, STATE_FILE), { lastMeasured, measured } satisfies HeldoutState);
}

/** The held-out images: the validation identities' (at most `max`, a seeded sample), or none with the reason. */
function heldoutImages(splits: Splits, max: number, seed: number): { images: TrainImage[]; why?: string } {
  const all = splits.validationImages;
  if (!all) return { images: [], why: 'the split predates validation_images.csv (rerun it: facepipe run -f split)' };
  if (!all.length) return { images: [], why: 'the split has no validation identities with listed images' };
  if (all.length <= max) return { images: all };
  const order = shuffleInPlace(
    createRng(`${seed}:heldout`),
    all.map((_, i) => i),
  );
  return {
    images: order
      .slice(0, max)
      .sort((a, b) => a - b)
      .map((i) => all[i]),
  };
}

type Ctx = StageContext<PretextParams>;

/** The training batches of the task (rotation: each image gets a random quarter-turn label and is rotated so). */
function taskBatches(
  ctx: Ctx,
  t: Task,
  train: TrainImage[],
  sizes: { size: number; resize: number; batchSize: number },
  cache: ImageCache,
): BatchProvider {
  const p = ctx.params;
  const { size, resize, batchSize } = sizes;
  const inner = makeBatchProvider({
    root: ctx.inputs.dataset,
    items: train,
    labels: t.task === 'attributes' ? t.labels : {},
    sampler: { kind: 'shuffle', batchSize, dropLast: true },
    size: { width: resize, height: resize },
    augment: {
      crop: resize > size ? { width: size, height: size } : undefined,
      flip: p.augment.flip,
      rotation: p.augment.rotation,
      erasing: p.augment.erasing > 0 ? { p: p.augment.erasing } : undefined,
    },
    cache,
  });
  if (t.task === 'attributes') return inner;
  return async function* (epoch: number, rng: Rng): AsyncGenerator<TrainBatch> {
    for await (const batch of inner(epoch, rng)) {
      const n = batch.x.shape[0];
      const rot = Array.from({ length: n }, () => randInt(rng, 4));
      const rotated = rotateBatch((await batch.x.data()) as Float32Array, n, size, rot);
      batch.x.dispose();
      yield {
        ...batch,
        x: tf.tensor4d(rotated, [n, size, size, 3]),
        labels: { ...batch.labels, rotation: tf.tensor1d(rot, 'int32') },
      };
    }
  };
}

/** What every training chunk and held-out measurement of a run shares. */
interface Session {
  ctx: Ctx;
  net: PretextNet;
  task: Task;
  names: string[];
  heldout: HeldoutSet;
  heldoutOptions: HeldoutOptions;
  /** Where the steps run (sharded worker threads, or this process). */
  steps: TrainingEngine;
  /** trainNet's options but the epoch to train up to. */
  train: Omit<TrainOptions, 'epochs'>;
  say: (line: string) => void;
}

async function startSession(ctx: Ctx, backend: BackendName, splits: Splits): Promise<Session> {
  const p = ctx.params;
  const train = splits.train;
  const task = chooseTask(p, splits);
  const { heads } = task;
  ctx.log(
    `pretext task: ${task.task} (${Object.entries(heads)
      .map(([k, v]) => `${k} ${v} classes`)
      .join(', ')}), ${train.length} images`,
  );
  const say = (line: string) => {
    ctx.log(line);
    ctx.progress(line);
  };
  const cfg = backboneConfig(p.backbone);
  const size = cfg.inputSize;
  const resize = p.augment.resize ?? Math.round((size * 256) / 224);
  if (resize < size)
    throw new Error(`pretext.augment.resize (${resize}) must be at least backbone.input_size (${size})`);
  const batchSize = Math.min(p.batch_size, train.length);
  const cache = new ImageCache();
  const batches = taskBatches(ctx, task, train, { size, resize, batchSize }, cache);
  const held = heldoutImages(splits, p.heldout_images, p.seed);
  if (held.why) say(`warning: no held-out accuracy: ${held.why}`);
  else ctx.log(`held-out accuracy on ${held.images.length} images of the validation identities`);
  const names = Object.keys(heads);
  const netOptions = { backbone: cfg, heads, seed: p.seed };
  const net = createPretextNet(netOptions);
  let steps: TrainingEngine | undefined;
  try {
    steps = await trainingEngine({
      ctx,
      backend,
      spec: { kind: 'pretext', options: netOptions },
      shards: p.shards,
      microBatch: p.micro_batch,
      batchSize,
    });
    const trainOptions: Omit<TrainOptions, 'epochs'> = {
      net,
      batches: steps.arrange(batches),
      loss: (out, batch) => {
        const parts: Record<string, tf.Scalar> = {};
        for (const name of names)
          parts[name] = labelSmoothedCrossEntropy(out[`logits_${name}`] as tf.Tensor2D, batch.labels[name], 0);
        return { total: tf.tidy(() => tf.addN(Object.values(parts)) as tf.Scalar), parts };
      },
      lr: p.optimizer.lr,
      milestones: p.optimizer.milestones,
      gamma: p.optimizer.gamma,
      lrAt: learningRate(p.optimizer, p.epochs),
      seed: p.seed,
      checkpointDir: join(ctx.workDir, 'checkpoint'),
      checkpointSeconds: CHECKPOINT_SECONDS,
      onWarning: (m) => {
        say(`warning: ${m}`);
        ctx.epochState?.restarted();
      },
      microBatch: fitMicroBatch(steps.microBatch, p.batch_size, net, (l) => ctx.log(l)),
      engine: steps.engine,
      signal: ctx.signal,
      // dropLast: floor(images / batch) batches an epoch.
      onStep: stepReporter(ctx, Math.floor(train.length / batchSize), p.epochs),
      onEpoch: (e) => ctx.log(formatEpoch(e)),
    };
    const heldoutOptions = { root: ctx.inputs.dataset, resize, size, cache, rotate: rotateBatch, signal: ctx.signal };
    const heldout = heldoutSet(held.images, task.classes);
    return { ctx, net, task, names, heldout, heldoutOptions, steps, train: trainOptions, say };
  } catch (e) {
    await steps?.engine?.close();
    net.dispose();
    throw e;
  }
}

interface Trained {
  state: HeldoutState;
  history: EpochInfo[];
  /** The held-out figures after the last epoch (none without held-out images). */
  last?: Record<string, HeadFigures>;
}

/** Held-out accuracy after epoch `target`: logged, reported, and sealed into the state. */
async function measure(
  s: Session,
  target: number,
  state: HeldoutState,
): Promise<{ state: HeldoutState; figures: Record<string, HeadFigures> }> {
  const { ctx, names } = s;
  ctx.progress(`epoch ${target}/${ctx.params.epochs}, held-out accuracy`);
  const figures = await heldoutFigures(s.net, s.heldout, names, s.heldoutOptions);
  const rounded = Object.fromEntries(names.map((h) => [h, round4(figures[h].accuracy)]));
  const next = {
    lastMeasured: target,
    measured: [...state.measured.filter((m) => m.epoch !== target), { epoch: target, ...rounded }],
  };
  writeSealed(join(ctx.workDir, STATE_FILE), next);
  ctx.log(`held-out accuracy after epoch ${target}: ${formatFigures(figures)}`);
  const metrics = Object.fromEntries(
    names.flatMap((h) => [
      [h, figures[h].accuracy],
      [`${h} chance`, figures[h].chance],
    ]),
  );
  ctx.report({ kind: 'validation', epoch: target, epochs: ctx.params.epochs, metrics, best: false });
  return { state: next, figures };
}

/**
 * Trains in chunks that end where held-out accuracy is measured; trainNet resumes from its epoch checkpoint, so
 * an interruption anywhere continues where it stopped, and the figures of done chunks are kept.
 */
async function trainAndMeasure(s: Session): Promise<Trained> {
  const { ctx } = s;
  const p = ctx.params;
  let state = await resumeState(ctx.workDir, s.train.checkpointDir!, s.say, () => ctx.epochState?.restarted());
  let history: EpochInfo[] = [];
  let last: Record<string, HeadFigures> | undefined;
  for (const target of heldoutEpochs(p.epochs, p.validate_every)) {
    // Chunks measured before an interruption are done (the last is measured again: its figures are the metrics).
    if (target <= state.lastMeasured && target !== p.epochs) continue;
    const result = await trainNet({ ...s.train, epochs: target });
    if (result.resumedFrom > 0 && result.resumedFrom > state.lastMeasured && result.history.length)
      ctx.log(`resumed after epoch ${result.resumedFrom}`);
    history = result.history;
    if (!s.heldout.files.length) continue;
    ({ state, figures: last } = await measure(s, target, state));
  }
  if (ctx.epochState) await writeEpochState(ctx.epochState.out, s.train.checkpointDir!, state, p.validate_every);
  return { state, history, last };
}

/** The backbone, its deterministic training record (no timings: the report's training curves read it), metrics. */
async function writeBackbone(s: Session, t: Trained): Promise<void> {
  const { ctx, names } = s;
  const { last, history } = t;
  await saveBackbone(s.net, ctx.outputs.backbone);
  const chance = last && Object.fromEntries(names.map((h) => [h, round4(last[h].chance)]));
  await writeFile(
    join(ctx.outputs.backbone, 'training.json'),
    JSON.stringify(
      {
        task: s.task.task,
        heldout_images: s.heldout.files.length,
        chance: chance ?? null,
        losses: history.map((h) => ({ epoch: h.epoch, loss: h.loss, parts: h.parts })),
        validations: t.state.measured,
      },
      null,
      1,
    ) + '\n',
  );
  const final = history[history.length - 1];
  ctx.metrics({
    task: s.task.task,
    ...(final ? { loss: Number(final.loss.toPrecision(4)) } : {}),
    ...(last
      ? {
          heldout_images: s.heldout.files.length,
          ...Object.fromEntries(
            names.flatMap((h) => [
              [`heldout_${h}`, round4(last[h].accuracy)],
              [`chance_${h}`, round4(last[h].chance)],
            ]),
          ),
        }
      : {}),
  });
  const warning = last && chanceWarning(last);
  if (warning) s.say(`warning: ${warning}`);
}

export const run: StageRun<PretextParams> = async (ctx) => {
  const backend = await initBackend(ctx.backend as BackendPreference);
  ctx.metrics(backendMetrics(backend));
  const splits = await readSplits(ctx.inputs.splits);
  const s = await startSession(ctx, backend.name, splits);
  try {
    await writeBackbone(s, await trainAndMeasure(s));
  } finally {
    await s.steps.engine?.close();
    s.net.dispose();
  }
};

const round4 = (v: number) => Number(v.toFixed(4));

export default run;
