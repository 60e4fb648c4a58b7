import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { fitMicroBatch } from '../../ml/backend/binding-limit.js';
import { backendMetrics, initBackend } from '../../ml/backend/select.js';
import { makeBatchProvider, type TrainBatch } from '../../ml/data/batches.js';
import { ImageCache } from '../../ml/data/cache.js';
import { randInt, type Rng } from '../../ml/data/rng.js';
import { labelSmoothedCrossEntropy } from '../../ml/losses/triarchy.js';
import { createPretextNet, saveBackbone } from '../../ml/model/index.js';
import { formatEpoch, trainNet } from '../../ml/train/trainer.js';
import type { BackendPreference } from '../../ml/types.js';
import type { StageRun } from '../../contracts/stage-kind.js';
import { readSplits, type TrainImage } from '../shared/splits-format.js';
import { backboneConfig } from '../shared/backbone-params.js';
import { stepReporter } from '../shared/train-progress.js';
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
): { heads: Record<string, number>; labels: Record<string, number[]>; dropped: string[] } {
  const heads: Record<string, number> = {};
  const labels: Record<string, number[]> = {};
  const dropped: string[] = [];
  for (const name of names) {
    const values = [...new Set(train.map((t) => t.attributes[name] ?? ''))].sort();
    if (values.length < 2) {
      dropped.push(name);
      continue;
    }
    const index = new Map(values.map((v, i) => [v, i]));
    heads[name] = values.length;
    labels[name] = train.map((t) => index.get(t.attributes[name] ?? '')!);
  }
  return { heads, labels, dropped };
}

export const run: StageRun<PretextParams> = async (ctx) => {
  const p = ctx.params;
  const backend = await initBackend(ctx.backend as BackendPreference);
  ctx.metrics(backendMetrics(backend));
  const splits = await readSplits(ctx.inputs.splits);
  const train = splits.train;
  const root = ctx.inputs.dataset;

  // Which task: attribute classes when the split has every listed attribute (with >= 2 values), else rotation.
  const missing = p.attributes.filter(
    (a) => !splits.summary.attributes.includes(a) || train.some((t) => !t.attributes[a]),
  );
  let task = p.task;
  let heads: Record<string, number> = { rotation: 4 };
  let labels: Record<string, number[]> = {};
  if (task !== 'rotation') {
    const attrs = attributeLabels(
      train,
      p.attributes.filter((a) => !missing.includes(a)),
    );
    const usable = p.attributes.length > 0 && missing.length === 0 && attrs.dropped.length === 0;
    if (task === 'attributes' && !usable) {
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
    if (usable) {
      task = 'attributes';
      heads = attrs.heads;
      labels = attrs.labels;
    } else task = 'rotation';
  }
  ctx.log(
    `pretext task: ${task} (${Object.entries(heads)
      .map(([k, v]) => `${k} ${v} classes`)
      .join(', ')}), ${train.length} images`,
  );

  const cfg = backboneConfig(p.backbone);
  const size = cfg.inputSize;
  const resize = p.augment.resize ?? Math.round((size * 256) / 224);
  if (resize < size)
    throw new Error(`pretext.augment.resize (${resize}) must be at least backbone.input_size (${size})`);
  const batchSize = Math.min(p.batch_size, train.length);
  const inner = makeBatchProvider({
    root,
    items: train,
    labels: task === 'attributes' ? labels : {},
    sampler: { kind: 'shuffle', batchSize, dropLast: true },
    size: { width: resize, height: resize },
    augment: {
      crop: resize > size ? { width: size, height: size } : undefined,
      flip: p.augment.flip,
      rotation: p.augment.rotation,
      erasing: p.augment.erasing > 0 ? { p: p.augment.erasing } : undefined,
    },
    cache: new ImageCache(),
  });
  // Rotation task: each image gets a random quarter-turn label and is rotated accordingly.
  const batches =
    task === 'attributes'
      ? inner
      : async function* (epoch: number, rng: Rng): AsyncGenerator<TrainBatch> {
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

  const net = createPretextNet({ backbone: cfg, heads, seed: p.seed });
  try {
    const names = Object.keys(heads);
    const result = await trainNet({
      net,
      batches,
      loss: (out, batch) => {
        const parts: Record<string, tf.Scalar> = {};
        for (const name of names)
          parts[name] = labelSmoothedCrossEntropy(out[`logits_${name}`] as tf.Tensor2D, batch.labels[name], 0);
        return { total: tf.tidy(() => tf.addN(Object.values(parts)) as tf.Scalar), parts };
      },
      epochs: p.epochs,
      lr: p.optimizer.lr,
      milestones: p.optimizer.milestones,
      gamma: p.optimizer.gamma,
      seed: p.seed,
      checkpointDir: join(ctx.workDir, 'checkpoint'),
      onWarning: (m) => {
        ctx.log(`warning: ${m}`);
        ctx.progress(`warning: ${m}`);
      },
      microBatch: fitMicroBatch(p.micro_batch ?? undefined, p.batch_size, net, (l) => ctx.log(l)),
      signal: ctx.signal,
      // dropLast: floor(images / batch) batches an epoch.
      onStep: stepReporter(ctx, Math.floor(train.length / batchSize), p.epochs),
      onEpoch: (e) => ctx.log(formatEpoch(e)),
    });
    if (result.resumedFrom > 0) ctx.log(`resumed after epoch ${result.resumedFrom}`);
    await saveBackbone(net, ctx.outputs.backbone);
    const last = result.history[result.history.length - 1];
    ctx.metrics({ task, ...(last ? { loss: Number(last.loss.toPrecision(4)) } : {}) });
  } finally {
    net.dispose();
  }
};

export default run;
