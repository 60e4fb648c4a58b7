// Batch samplers returning item indices. Both are pure functions of the RNG, so the same seed
// gives the same batches.
import { randInt, shuffleInPlace, type Rng } from './rng.js';

export interface PKSamplerOptions {
  /** Identities per batch (the original: 8). */
  p: number;
  /** Images per identity (the original: 16). */
  k: number;
  /**
   * Identities with fewer than K images: 'replace' draws their K images with replacement
   * (duplicates in the batch), 'skip' leaves them out of every batch. The original needs >= K
   * and would crash otherwise. Default 'replace'.
   */
  fewer?: 'replace' | 'skip';
}

/**
 * One epoch of P x K batches, as in the original TrainSampler: identities in a random order, K images
 * each (without replacement when possible), consecutive groups of P identities form a batch, and an
 * incomplete last group is dropped. Every batch has exactly P*K indices, identity-major.
 */
export function pkEpoch(labels: ArrayLike<number>, opts: PKSamplerOptions, rng: Rng): number[][] {
  const { p, k } = opts;
  if (!(Number.isInteger(p) && p >= 2))
    throw new Error(`P x K sampler: p must be an integer >= 2 (got ${p}); batch-hard mining needs negatives`);
  if (!(Number.isInteger(k) && k >= 1)) throw new Error(`P x K sampler: k must be a positive integer (got ${k})`);
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    let list = byClass.get(c);
    if (!list) byClass.set(c, (list = []));
    list.push(i);
  }
  const fewer = opts.fewer ?? 'replace';
  const classes = [...byClass.keys()]
    .sort((a, b) => a - b)
    .filter((c) => fewer === 'replace' || byClass.get(c)!.length >= k);
  if (classes.length < p)
    throw new Error(
      `P x K sampler: ${classes.length} usable identities (fewer='${fewer}', k=${k}) but p=${p}; lower p or k`,
    );
  shuffleInPlace(rng, classes);
  const batches: number[][] = [];
  for (let start = 0; start + p <= classes.length; start += p) {
    const batch: number[] = [];
    for (const c of classes.slice(start, start + p)) batch.push(...chooseK(byClass.get(c)!, k, rng));
    batches.push(batch);
  }
  return batches;
}

function chooseK(pool: number[], k: number, rng: Rng): number[] {
  if (pool.length < k) return Array.from({ length: k }, () => pool[randInt(rng, pool.length)]);
  const a = pool.slice();
  // Partial Fisher-Yates: the first k positions are a uniform sample without replacement.
  for (let i = 0; i < k; i++) {
    const j = i + randInt(rng, a.length - i);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, k);
}

/** One epoch of shuffled batches of `batchSize` (pretext training); dropLast as the original (default true). */
export function shuffledEpoch(n: number, batchSize: number, rng: Rng, dropLast = true): number[][] {
  if (!(Number.isInteger(batchSize) && batchSize >= 1))
    throw new Error(`batchSize must be a positive integer (got ${batchSize})`);
  const order = shuffleInPlace(
    rng,
    Array.from({ length: n }, (_, i) => i),
  );
  const batches: number[][] = [];
  for (let s = 0; s < n; s += batchSize) {
    const b = order.slice(s, s + batchSize);
    if (b.length < batchSize && dropLast) break;
    batches.push(b);
  }
  if (batches.length === 0)
    throw new Error(`${n} items make no full batch of ${batchSize}; lower the batch size or set dropLast false`);
  return batches;
}
