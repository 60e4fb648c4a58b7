// The arithmetic of a sharded step that happens outside TensorFlow.js, over shared memory: gradient reduction
// over shards in a fixed order, Adam, and BatchNorm moving statistics from per-shard batch statistics.
// Elementwise and order-fixed, so any split of the elements over workers gives the same bits. The reduction and
// Adam run as WebAssembly SIMD (adam-wasm.ts) where available; the JavaScript here is its bit-exact twin.
import type { AdamKernels } from './adam-wasm.js';

/** Float32 views of the flat training state (on one shared wasm memory: byteOffset is a pointer into it). */
export interface FlatState {
  /** Trainable parameters, concatenated in the net's trainableVariables() order. */
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  /** Per-shard gradients, shard s at [s * params.length, (s + 1) * params.length); reduced in place. */
  grads: Float32Array;
  /** Gradients of variables the loss uses directly (e.g. class centres), computed once on the whole batch. */
  direct: Float32Array;
  /** hasGrad[s * numVars + i] (s < shards) for shard s, hasGrad[shards * numVars + i] for direct. */
  hasGrad: Uint8Array;
  /** The SIMD kernels on the views' memory; absent: the JavaScript twin. */
  kernels?: AdamKernels;
}

export interface AdamStep {
  lr: number;
  /** 1-based step number (PyTorch's `step` after the increment). */
  step: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** Adam's per-step float32 constants. */
interface AdamConsts {
  b1: number;
  c1: number;
  b2: number;
  c2: number;
  stepSize: number;
  sqrtBc2: number;
  eps: number;
}

/**
 * Reduces the shards' gradients and applies Adam (PyTorch's rule, as ../adam.ts, in float32) to the elements
 * [from, to) of the flat parameters. Per element: g = ((g_0 + g_1) + ...) + direct, shards in index order,
 * absent terms skipped (the sum is left in the first present shard's gradient); a variable with no gradient
 * at all is left alone, moments included.
 */
export function reduceAndAdam(
  s: FlatState,
  offsets: readonly number[],
  shards: number,
  a: AdamStep,
  from: number,
  to: number,
): void {
  const n = s.params.length;
  const numVars = offsets.length - 1;
  const f = Math.fround;
  const k: AdamConsts = {
    b1: f(a.beta1),
    c1: f(1 - a.beta1),
    b2: f(a.beta2),
    c2: f(1 - a.beta2),
    stepSize: f(a.lr / (1 - a.beta1 ** a.step)),
    sqrtBc2: f(Math.sqrt(1 - a.beta2 ** a.step)),
    eps: f(a.epsilon),
  };
  for (let i = 0; i < numVars; i++) {
    const lo = Math.max(from, offsets[i]);
    const hi = Math.min(to, offsets[i + 1]);
    if (lo >= hi) continue;
    const present: number[] = [];
    for (let sh = 0; sh < shards; sh++) if (s.hasGrad[sh * numVars + i]) present.push(sh * n);
    const direct = s.hasGrad[shards * numVars + i] === 1;
    if (present.length === 0 && !direct) continue;
    // The reduced gradient: in the first present shard's slot, or the direct gradient alone.
    const [g, go] = present.length > 0 ? [s.grads, present[0]] : [s.direct, 0];
    const terms: Array<[Float32Array, number]> = present.slice(1).map((o) => [s.grads, o]);
    if (direct && present.length > 0) terms.push([s.direct, 0]);
    if (s.kernels) {
      const ptr = (arr: Float32Array, o: number) => arr.byteOffset + 4 * (o + lo);
      for (const [arr, o] of terms) s.kernels.add(ptr(g, go), ptr(arr, o), hi - lo);
      s.kernels.adam(
        ptr(s.params, 0),
        ptr(s.m, 0),
        ptr(s.v, 0),
        ptr(g, go),
        hi - lo,
        k.b1,
        k.c1,
        k.b2,
        k.c2,
        k.stepSize,
        k.sqrtBc2,
        k.eps,
      );
    } else {
      for (const [arr, o] of terms) addInto(g, go, arr, o, lo, hi);
      adamRange(s, g, go, lo, hi, k);
    }
  }
}

/** dst[d + e] += src[o + e] for e in [lo, hi), float32. */
function addInto(dst: Float32Array, d: number, src: Float32Array, o: number, lo: number, hi: number): void {
  for (let e = lo; e < hi; e++) dst[d + e] = dst[d + e] + src[o + e];
}

/** Adam on [lo, hi) with gradient g[go + e]: each operation rounded to float32, as the SIMD lanes compute it. */
function adamRange(s: FlatState, g: Float32Array, go: number, lo: number, hi: number, k: AdamConsts): void {
  const { params, m, v } = s;
  const { b1, c1, b2, c2, stepSize, sqrtBc2, eps } = k;
  const f = Math.fround;
  for (let e = lo; e < hi; e++) {
    const ge = g[go + e];
    const me = f(f(b1 * m[e]) + f(c1 * ge));
    const ve = f(f(b2 * v[e]) + f(c2 * f(ge * ge)));
    m[e] = me;
    v[e] = ve;
    params[e] = f(params[e] - f(f(stepSize * me) / f(f(f(Math.sqrt(ve)) / sqrtBc2) + eps)));
  }
}

/** One BatchNorm layer as the shards report it. */
export interface BnLayer {
  /** Indices of its moving mean and moving variance in the net's stateVariables(). */
  meanVar: number;
  varVar: number;
  momentum: number;
}

/**
 * Updates the moving statistics of `layers` once per step, as one whole-batch BatchNorm would: the shards'
 * means and (biased) variances, weighted by their element counts, give the batch's mean and variance (with
 * the between-shard spread), whose unbiased variance enters moving = momentum * moving + (1 - momentum) * batch.
 * `stats` holds shard s's mean at the moving mean's offsets and its variance at the moving variance's, at
 * s * state.length; counts[s][l] is layer l's element count per channel in shard s (0 = not run).
 */
export function foldBatchStats(
  state: Float32Array,
  stateOffsets: readonly number[],
  layers: readonly BnLayer[],
  stats: Float32Array,
  counts: readonly (readonly number[])[],
): void {
  const ns = state.length;
  const f = Math.fround;
  layers.forEach((layer, l) => {
    const shards = counts.map((c, s) => ({ s, m: c[l] ?? 0 })).filter((x) => x.m > 0);
    if (shards.length === 0) return;
    const total = shards.reduce((t, x) => t + x.m, 0);
    const mo = stateOffsets[layer.meanVar];
    const vo = stateOffsets[layer.varVar];
    const channels = stateOffsets[layer.meanVar + 1] - mo;
    const mom = layer.momentum;
    for (let c = 0; c < channels; c++) {
      let mu = 0;
      for (const { s, m } of shards) mu += m * stats[s * ns + mo + c];
      mu /= total;
      let vb = 0;
      for (const { s, m } of shards) {
        const d = stats[s * ns + mo + c] - mu;
        vb += m * (stats[s * ns + vo + c] + d * d);
      }
      vb /= total;
      const unbiased = total > 1 ? (vb * total) / (total - 1) : vb;
      state[mo + c] = f(mom * state[mo + c] + (1 - mom) * mu);
      state[vo + c] = f(mom * state[vo + c] + (1 - mom) * unbiased);
    }
  });
}

/**
 * The batch's rows in shard order: shard s takes rows s, s + shards, s + 2 * shards, ... so that each shard of
 * a P x K batch (K images of an identity in a row) holds every identity; BatchNorm statistics of shards made of
 * a few identities each would differ from the whole batch's and hurt. Shard s sits at shardRows(n, shards)[s].
 */
export function shardOrder(n: number, shards: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < shards; s++) for (let r = s; r < n; r += shards) out.push(r);
  return out;
}

/** Positions [start, start + length) of each of `shards` near-equal shards of a batch of n (the first n % shards get one more). */
export function shardRows(n: number, shards: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const base = Math.floor(n / shards);
  const extra = n % shards;
  let start = 0;
  for (let s = 0; s < shards; s++) {
    const len = base + (s < extra ? 1 : 0);
    out.push([start, len]);
    start += len;
  }
  return out;
}

/** The contiguous block of shards worker w of `workers` computes. */
export function workerShards(w: number, workers: number, shards: number): number[] {
  const lo = Math.floor((w * shards) / workers);
  const hi = Math.floor(((w + 1) * shards) / workers);
  return Array.from({ length: hi - lo }, (_, i) => lo + i);
}

/** Element range [from, to) of n that worker w of `workers` updates. */
export function workerElements(w: number, workers: number, n: number): [number, number] {
  return [Math.floor((w * n) / workers), Math.floor(((w + 1) * n) / workers)];
}

/** Offsets of concatenated tensors: offsets[i] .. offsets[i + 1] is tensor i; the last entry is the total. */
export function offsetsOf(sizes: readonly number[]): number[] {
  const out = [0];
  for (const s of sizes) out.push(out[out.length - 1] + s);
  return out;
}
