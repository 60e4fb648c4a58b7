// Held-out accuracy of the pretext heads on images of the validation identities (never trained on), next to
// chance: the share of the most common class in the held-out set (what a net that learned nothing scores by
// always answering that class). The rotation task shows every held-out image at each of the 4 quarter turns.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { ImageCache } from '../../ml/data/cache.js';
import { rgb8ToFloat, type Rgb8Image } from '../../ml/data/image.js';
import type { TrainableNet } from '../../ml/types.js';
import type { TrainImage } from '../shared/splits-format.js';

/** A head ends "within a few points of chance" below chance + this margin: the stage then warns. */
export const CHANCE_MARGIN = 0.05;

export interface HeldoutSet {
  /** Images (relative to the dataset root) shown to every head. */
  files: string[];
  /** Head -> class of each file (-1: a value training never saw, not scored). Rotation has none (4 turns each). */
  labels: Record<string, number[]>;
  rotation: boolean;
}

export interface HeadFigures {
  accuracy: number;
  chance: number;
  /** Images (x 4 turns for rotation) scored. */
  n: number;
}

/**
 * The held-out set: each attribute head's classes indexed as in training (`classes[head]`: the training values,
 * sorted); images whose value training never saw are not scored for that head.
 */
export function heldoutSet(images: TrainImage[], classes: Record<string, string[]> | null): HeldoutSet {
  const files = images.map((i) => i.file);
  if (!classes) return { files, labels: {}, rotation: true };
  const labels: Record<string, number[]> = {};
  for (const [head, values] of Object.entries(classes)) {
    const index = new Map(values.map((v, i) => [v, i]));
    labels[head] = images.map((i) => index.get(i.attributes[head] ?? '') ?? -1);
  }
  return { files, labels, rotation: false };
}

/** The share of the most common class among the scored labels (0 when none is scored). */
export function chanceOf(labels: number[]): number {
  const counts = new Map<number, number>();
  let n = 0;
  for (const l of labels)
    if (l >= 0) {
      counts.set(l, (counts.get(l) ?? 0) + 1);
      n++;
    }
  return n ? Math.max(...counts.values()) / n : 0;
}

/** The centre `size` x `size` square of an image decoded at a larger square size (the eval view of a random crop). */
export function centerCrop(img: Rgb8Image, size: number): Float32Array {
  const full = rgb8ToFloat(img);
  if (img.width === size && img.height === size) return full;
  const top = Math.floor((img.height - size) / 2);
  const left = Math.floor((img.width - size) / 2);
  const out = new Float32Array(size * size * 3);
  for (let y = 0; y < size; y++)
    out.set(full.subarray(((top + y) * img.width + left) * 3, ((top + y) * img.width + left + size) * 3), y * size * 3);
  return out;
}

export interface HeldoutOptions {
  root: string;
  /** Decode size (the training images' before their random crop) and the net's input size. */
  resize: number;
  size: number;
  cache: ImageCache;
  /** Rotates each square HWC image of a batch by labels[i] quarter turns (the training task's own function). */
  rotate: (x: Float32Array, n: number, size: number, turns: number[]) => Float32Array;
  batchSize?: number;
  signal?: AbortSignal;
}

/** Accuracy of each head in inference mode (BN moving statistics, no drop-connect) on the held-out set. */
export async function heldoutFigures(
  net: TrainableNet,
  set: HeldoutSet,
  heads: string[],
  o: HeldoutOptions,
): Promise<Record<string, HeadFigures>> {
  const per = o.size * o.size * 3;
  const bs = o.batchSize ?? 64;
  const correct: Record<string, number> = Object.fromEntries(heads.map((h) => [h, 0]));
  const scored: Record<string, number> = Object.fromEntries(heads.map((h) => [h, 0]));
  const turns = set.rotation ? [0, 1, 2, 3] : [0];
  for (let s = 0; s < set.files.length; s += bs) {
    if (o.signal?.aborted) throw new Error('held-out evaluation aborted');
    const files = set.files.slice(s, s + bs);
    const x = new Float32Array(files.length * per);
    for (const [j, f] of files.entries()) {
      const img = await o.cache.get(join(o.root, f), { width: o.resize, height: o.resize });
      x.set(centerCrop(img, o.size), j * per);
    }
    for (const t of turns) {
      const input =
        set.rotation && t > 0
          ? o.rotate(
              x,
              files.length,
              o.size,
              files.map(() => t),
            )
          : x;
      const preds = tf.tidy(() => {
        const out = net.apply(tf.tensor4d(input, [files.length, o.size, o.size, 3]), false);
        return heads.map((h) => tf.argMax(out[`logits_${h}`], 1));
      });
      const values = await Promise.all(preds.map((p) => p.data()));
      tf.dispose(preds);
      heads.forEach((h, k) => {
        for (let j = 0; j < files.length; j++) {
          const label = set.rotation ? t : set.labels[h][s + j];
          if (label < 0) continue;
          scored[h]++;
          if (values[k][j] === label) correct[h]++;
        }
      });
    }
  }
  return Object.fromEntries(
    heads.map((h) => [
      h,
      {
        accuracy: scored[h] ? correct[h] / scored[h] : NaN,
        chance: set.rotation ? 0.25 : chanceOf(set.labels[h]),
        n: scored[h],
      },
    ]),
  );
}

/** "pose 0.81 (chance 0.25), expression 0.31 (chance 0.26)" */
export function formatFigures(figs: Record<string, HeadFigures>): string {
  return Object.entries(figs)
    .map(([h, f]) => `${h} ${f.accuracy.toFixed(2)} (chance ${f.chance.toFixed(2)})`)
    .join(', ');
}

/** The heads that ended within CHANCE_MARGIN of chance, worded as the stage's warning; undefined when none did. */
export function chanceWarning(figs: Record<string, HeadFigures>): string | undefined {
  const flat = Object.entries(figs).filter(([, f]) => f.n > 0 && f.accuracy < f.chance + CHANCE_MARGIN);
  if (!flat.length) return undefined;
  return `pretext learned nothing: ${flat.map(([h, f]) => `${h} ${f.accuracy.toFixed(2)}, chance ${f.chance.toFixed(2)}`).join('; ')} (held-out images of the validation identities)`;
}
