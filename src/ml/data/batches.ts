// Glue from a dataset listing to training batches: sampler -> cached decode -> augment -> tensors.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { augment, augmentedSize, type AugmentConfig } from './augment.js';
import { ImageCache } from './cache.js';
import type { DatasetItem } from './dataset.js';
import { rgb8ToFloat, type ImageSize } from './image.js';
import type { Rng } from './rng.js';
import { pkEpoch, shuffledEpoch, type PKSamplerOptions } from './sampler.js';

/** One training batch: images [N, H, W, 3] float32 in [0, 1] and int32 label vectors by name. */
export interface TrainBatch {
  x: tf.Tensor4D;
  labels: Record<string, tf.Tensor1D>;
  /** Dataset item indices, for logging/debugging. */
  indices: number[];
}

export type SamplerConfig =
  ({ kind: 'pk' } & PKSamplerOptions) | { kind: 'shuffle'; batchSize: number; dropLast?: boolean };

export interface BatchProviderOptions {
  root: string;
  items: DatasetItem[];
  /** Label vectors by name, one int per item (e.g. { identity: [...] }). The P x K sampler groups by `pkLabel`. */
  labels: Record<string, ArrayLike<number>>;
  /** Which label the P x K sampler groups by (default 'identity'). */
  pkLabel?: string;
  sampler: SamplerConfig;
  /** Decode size (before augmentation). */
  size: ImageSize;
  augment?: AugmentConfig;
  cache: ImageCache;
}

/** Batch indices of one epoch (consumes the RNG). */
export function epochIndices(
  opts: Pick<BatchProviderOptions, 'items' | 'labels' | 'pkLabel' | 'sampler'>,
  rng: Rng,
): number[][] {
  const s = opts.sampler;
  if (s.kind === 'pk') {
    const key = opts.pkLabel ?? 'identity';
    const labels = opts.labels[key];
    if (!labels) throw new Error(`P x K sampler: no label vector named '${key}'`);
    return pkEpoch(labels, s, rng);
  }
  return shuffledEpoch(opts.items.length, s.batchSize, rng, s.dropLast ?? true);
}

/**
 * A per-epoch batch provider for trainNet: the epoch's batches are drawn from `rng` up front, then each
 * batch's images are loaded (cache), augmented (same rng, in batch order) and stacked.
 */
export function makeBatchProvider(opts: BatchProviderOptions): (epoch: number, rng: Rng) => AsyncGenerator<TrainBatch> {
  for (const [name, v] of Object.entries(opts.labels))
    if (v.length !== opts.items.length)
      throw new Error(`label vector '${name}' has ${v.length} entries for ${opts.items.length} items`);
  // Starts decoding a batch's images early; decoding uses no RNG, so the batches do not change.
  const warm = (indices: number[] | undefined) => {
    for (const i of indices ?? [])
      opts.cache.get(join(opts.root, opts.items[i].file), opts.size).catch(() => undefined);
  };
  return async function* (_epoch: number, rng: Rng) {
    const all = epochIndices(opts, rng);
    for (const [b, indices] of all.entries()) {
      const batch = loadBatch(opts, indices, rng);
      warm(all[b + 1]);
      yield await batch;
    }
  };
}

/** Loads, augments and stacks the given items. */
export async function loadBatch(
  opts: Omit<BatchProviderOptions, 'sampler'>,
  indices: number[],
  rng?: Rng,
): Promise<TrainBatch> {
  const imgs = await Promise.all(indices.map((i) => opts.cache.get(join(opts.root, opts.items[i].file), opts.size)));
  const aug = opts.augment;
  const out = aug
    ? augmentedSize(opts.size.width, opts.size.height, aug)
    : { width: opts.size.width, height: opts.size.height };
  const per = out.width * out.height * 3;
  const x = new Float32Array(indices.length * per);
  imgs.forEach((img, b) => {
    if (!aug || !rng) {
      rgb8ToFloat(img, x, b * per);
      return;
    }
    const a = augment({ width: img.width, height: img.height, data: rgb8ToFloat(img) }, aug, rng);
    x.set(a.data, b * per);
  });
  const labels: Record<string, tf.Tensor1D> = {};
  for (const [name, v] of Object.entries(opts.labels))
    labels[name] = tf.tensor1d(
      indices.map((i) => v[i]),
      'int32',
    );
  return { x: tf.tensor4d(x, [indices.length, out.height, out.width, 3]), labels, indices };
}

/**
 * Decodes every item once (warming the cache) and applies the dataset's error policy to unreadable
 * images: 'fail' throws the first error (it names the file), 'skip' drops them and lists them.
 */
export async function checkImages(
  root: string,
  items: DatasetItem[],
  size: ImageSize,
  cache: ImageCache,
  onError: 'fail' | 'skip',
): Promise<{ items: DatasetItem[]; skipped: Array<{ file: string; reason: string }> }> {
  const kept: DatasetItem[] = [];
  const skipped: Array<{ file: string; reason: string }> = [];
  for (const item of items) {
    try {
      await cache.get(join(root, item.file), size);
      kept.push(item);
    } catch (e) {
      if (onError === 'fail') throw e;
      skipped.push({ file: item.file, reason: (e as Error).message });
    }
  }
  return { items: kept, skipped };
}
