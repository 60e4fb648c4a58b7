// Building blocks shared by the models: seeded parameters, batch norm with a hand-written gradient,
// swish, pointwise convolution as matmul, channel reductions that stay fast on wasm.
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle registers no gradients; tfjs-layers' bundle registers them all on import.
import '@tensorflow/tfjs-layers';
import { FP_BATCH_NORM_GRAD, FP_BATCH_NORM_TRAIN, FP_SE_GATE_GRAD, FP_SWISH_GRAD } from '../kernels/batchnorm.js';
import { simdKernelsFor } from '../kernels/simd.js';
import { FP_WG_BATCH_NORM_TRAIN, FP_WG_SWISH, FP_WG_SWISH_GRAD } from '../kernels/webgpu/names.js';
import type { WasmMemory } from '../kernels/wasm-util.js';

let nextStoreId = 0;

/** Named variables of one network. Logical names are stable (used in saved files); tf names are made unique. */
export class ParamStore {
  readonly vars = new Map<string, tf.Variable>();
  readonly trainable = new Set<string>();
  private readonly uid = `fp${nextStoreId++}`;
  constructor(readonly seed: number) {}

  /** U(-bound, bound) seeded by (seed, name): same seed, same weights, independent of creation order. */
  uniform(name: string, shape: number[], bound: number): tf.Variable {
    return this.add(name, tf.randomUniform(shape, -bound, bound, 'float32', `${this.seed}:${name}`), true);
  }
  constant(name: string, shape: number[], value: number, trainable: boolean): tf.Variable {
    return this.add(name, tf.fill(shape, value), trainable);
  }
  private add(name: string, init: tf.Tensor, trainable: boolean): tf.Variable {
    if (this.vars.has(name)) throw new Error(`ParamStore: duplicate parameter name '${name}'`);
    const v = tf.variable(init, trainable, `${this.uid}/${name}`);
    init.dispose();
    this.vars.set(name, v);
    if (trainable) this.trainable.add(name);
    return v;
  }
  trainableVariables(): tf.Variable[] {
    return [...this.vars].filter(([n]) => this.trainable.has(n)).map(([, v]) => v);
  }
  stateVariables(): tf.Variable[] {
    return [...this.vars].filter(([n]) => !this.trainable.has(n)).map(([, v]) => v);
  }
  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    this.trainable.clear();
  }
}

/** Deterministic stream of seeds for per-step randomness (drop-connect). */
export class SeedStream {
  private counter = 0;
  private base: string;
  constructor(seed: number) {
    this.base = `${seed}:step`;
  }
  next(): string {
    return `${this.base}:${this.counter++}`;
  }
  /** Restart the stream from a new base: the same base replays the same masks. */
  reset(base: string): void {
    this.base = base;
    this.counter = 0;
  }
}

const onWasm = () => tf.getBackend() === 'wasm';

/** True when facepipe's SIMD kernels (batch norm, swish gradient) can run (wasm backend, registered, wasm SIMD). */
function simdBatchNorm(): boolean {
  if (!onWasm() || !tf.getKernel(FP_BATCH_NORM_TRAIN, 'wasm')) return false;
  const memory = (tf.backend() as unknown as { wasm: { asm: { memory: WasmMemory } } }).wasm.asm.memory;
  return simdKernelsFor(memory) !== undefined;
}

/** True when facepipe's fused WebGPU kernels are registered and webgpu is the backend. */
function webgpuFused(): boolean {
  return tf.getBackend() === 'webgpu' && tf.getKernel(FP_WG_BATCH_NORM_TRAIN, 'webgpu') !== undefined;
}

/**
 * Per-channel mean of a [M, C] matrix. On wasm, reducing a non-innermost axis transposes the whole tensor
 * first (~5 ns/element) and a ones-row matmul repacks the big operand on every call; XNNPACK's average pooling
 * over an [M, 1] window does it in one SIMD pass (~0.4 ns/element). No gradient needed (used inside customGrads).
 */
export function channelMean(x2d: tf.Tensor2D): tf.Tensor1D {
  const [m, c] = x2d.shape;
  if (!onWasm()) return tf.mean(x2d, 0);
  return tf.reshape(tf.avgPool(tf.reshape(x2d, [1, m, 1, c]) as tf.Tensor4D, [m, 1], 1, 'valid'), [c]);
}

/** Spatial mean of [N, H, W, C] -> [N, C] (global average pooling). */
export function spatialMean(x: tf.Tensor4D): tf.Tensor2D {
  const [n, , , c] = x.shape;
  if (!onWasm()) return tf.mean(x, [1, 2]) as tf.Tensor2D;
  return tf.reshape(spatialMeanWasm(x), [n, c]);
}

// Average pooling with a broadcast-multiply gradient (XNNPACK); wasm's Tile/BroadcastTo is a slow generic loop.
const spatialMeanWasm = tf.customGrad(((x: tf.Tensor4D, save: tf.GradSaveFunc) => {
  const [n, h, w, c] = x.shape;
  save([]);
  return {
    value: tf.avgPool(x, [h, w], 1, 'valid'),
    gradFunc: (dy: tf.Tensor) => [tf.mul(tf.fill([n, h, w, c], 1 / (h * w)), dy)],
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor4D) => tf.Tensor4D;

/** x * sigmoid(x) with a one-node gradient. */
export const swish = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  if (webgpuFused()) {
    save([x]);
    return {
      value: tf.engine().runKernel(FP_WG_SWISH, { x }) as tf.Tensor,
      gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) => [
        tf.engine().runKernel(FP_WG_SWISH_GRAD, { dy, x: xs }) as tf.Tensor,
      ],
    };
  }
  const s = tf.sigmoid(x);
  save([x, s]);
  return {
    value: tf.mul(x, s),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ss] = saved;
      // d/dx x*s(x) = s * (1 + x * (1 - s)); one SIMD pass on wasm instead of five ops.
      if (simdBatchNorm()) return [tf.engine().runKernel(FP_SWISH_GRAD, { dy, x: xs, s: ss }) as tf.Tensor];
      return [tf.mul(dy, tf.mul(ss, tf.add(1, tf.mul(xs, tf.sub(1, ss)))))];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;

/**
 * A squeeze-excitation gate: h [N, H, W, C] scaled by s [N, C] per image and channel. On wasm with SIMD its gradient
 * is one pass (dh and ds together, FP_SE_GATE_GRAD); elsewhere it is the plain broadcast product.
 */
export function seGate(h: tf.Tensor4D, s: tf.Tensor2D): tf.Tensor4D {
  const [n, , , c] = h.shape;
  if (!simdBatchNorm()) return tf.mul(h, tf.reshape(s, [n, 1, 1, c]));
  return seGateSimd(h, s);
}

const seGateSimd = tf.customGrad(((h: tf.Tensor4D, s: tf.Tensor2D, save: tf.GradSaveFunc) => {
  const [n, , , c] = h.shape;
  save([h, s]);
  return {
    value: tf.mul(h, tf.reshape(s, [n, 1, 1, c])),
    gradFunc: (dy: tf.Tensor, [hs, ss]: tf.Tensor[]) =>
      tf.engine().runKernel(FP_SE_GATE_GRAD, { dy, h: hs, s: ss }) as tf.Tensor[],
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (h: tf.Tensor4D, s: tf.Tensor2D) => tf.Tensor4D;

export interface BatchNormParams {
  gamma: tf.Variable;
  beta: tf.Variable;
  movingMean: tf.Variable;
  movingVariance: tf.Variable;
  /** TensorFlow convention: moving = moving * momentum + batch * (1 - momentum). */
  momentum: number;
  epsilon: number;
}

export function createBatchNorm(
  store: ParamStore,
  name: string,
  channels: number,
  momentum: number,
  epsilon: number,
): BatchNormParams {
  return {
    gamma: store.constant(`${name}/gamma`, [channels], 1, true),
    beta: store.constant(`${name}/beta`, [channels], 0, true),
    movingMean: store.constant(`${name}/moving_mean`, [channels], 0, false),
    movingVariance: store.constant(`${name}/moving_variance`, [channels], 1, false),
    momentum,
    epsilon,
  };
}

/**
 * Batch norm over all axes but the last. Training uses batch statistics, updates the moving statistics
 * (unbiased variance, as PyTorch and TF do) and has a hand-written gradient: the stock FusedBatchNorm
 * gradient tiles 1/sqrt(var) to full size and chains many full-size ops.
 */
export function batchNorm(x: tf.Tensor, p: BatchNormParams, training: boolean): tf.Tensor {
  if (!training) {
    return tf.batchNorm(x, p.movingMean, p.movingVariance, p.beta, p.gamma, p.epsilon);
  }
  const c = x.shape[x.shape.length - 1];
  const m = x.size / c;
  const eps = p.epsilon;
  if (simdBatchNorm()) return batchNormSimd(x, p, m);
  if (webgpuFused()) return batchNormWebGpu(x, p);
  const f = tf.customGrad(((xIn: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, save: tf.GradSaveFunc) => {
    const x2d = tf.reshape(xIn, [m, c]) as tf.Tensor2D;
    const mean = channelMean(x2d);
    const centred = tf.sub(x2d, mean) as tf.Tensor2D;
    const variance = channelMean(tf.square(centred) as tf.Tensor2D);
    updateMoving(p, mean, variance, m);
    const invStd = tf.rsqrt(tf.add(variance, eps));
    const y = tf.add(tf.mul(centred, tf.mul(invStd, gamma)), beta);
    save([centred, invStd, gamma]);
    return {
      value: tf.reshape(y, xIn.shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xc, inv, g] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        const dy2d = tf.reshape(dy, [m, c]) as tf.Tensor2D;
        const meanDy = channelMean(dy2d);
        const meanDyXc = channelMean(tf.mul(dy2d, xc) as tf.Tensor2D);
        const k = tf.mul(g, inv);
        // dx = k * (dy - mean(dy) - xc * inv^2 * mean(dy * xc))
        const k2 = tf.neg(tf.mul(k, tf.mul(tf.square(inv), meanDyXc)));
        const k3 = tf.neg(tf.mul(k, meanDy));
        const dx = tf.add(tf.add(tf.mul(dy2d, k), tf.mul(xc, k2)), k3);
        return [tf.reshape(dx, dy.shape), tf.mul(tf.mul(meanDyXc, m), inv), tf.mul(meanDy, m)];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor;
  return f(x, p.gamma, p.beta);
}

function batchNormSimd(x: tf.Tensor, p: BatchNormParams, m: number): tf.Tensor {
  const attrs = { epsilon: p.epsilon } as unknown as tf.NamedAttrMap;
  const f = tf.customGrad(((xIn: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, save: tf.GradSaveFunc) => {
    const [y, mean, variance] = tf
      .engine()
      .runKernel(FP_BATCH_NORM_TRAIN, { x: xIn, gamma, beta }, attrs) as tf.Tensor[];
    updateMoving(p, mean as tf.Tensor1D, variance as tf.Tensor1D, m);
    save([xIn, mean, variance, gamma]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, mu, v, g] = saved;
        return tf
          .engine()
          .runKernel(FP_BATCH_NORM_GRAD, { dy, x: xs, mean: mu, variance: v, gamma: g }, attrs) as tf.Tensor[];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor;
  return f(x, p.gamma, p.beta);
}

// One kernel for statistics, normalisation and the moving averages; the gradient is the wasm kernel's contract.
function batchNormWebGpu(x: tf.Tensor, p: BatchNormParams): tf.Tensor {
  const attrs = { epsilon: p.epsilon, momentum: p.momentum } as unknown as tf.NamedAttrMap;
  const f = tf.customGrad(((xIn: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, save: tf.GradSaveFunc) => {
    const inputs = { x: xIn, gamma, beta, movingMean: p.movingMean, movingVariance: p.movingVariance };
    const [y, mean, variance, mm, mv] = tf.engine().runKernel(FP_WG_BATCH_NORM_TRAIN, inputs, attrs) as tf.Tensor[];
    p.movingMean.assign(mm);
    p.movingVariance.assign(mv);
    save([xIn, mean, variance, gamma]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, [xs, mu, v, g]: tf.Tensor[]) =>
        tf.engine().runKernel(FP_BATCH_NORM_GRAD, { dy, x: xs, mean: mu, variance: v, gamma: g }, attrs) as tf.Tensor[],
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor;
  return f(x, p.gamma, p.beta);
}

/** Receives a training-mode BatchNorm's batch mean, biased variance and element count per channel. */
export type BatchStatsSink = (p: BatchNormParams, mean: tf.Tensor1D, variance: tf.Tensor1D, count: number) => void;
let batchStatsSink: BatchStatsSink | undefined;

/**
 * While set, training-mode batch norms hand their batch statistics to `sink` instead of updating the moving
 * statistics (sharded training combines the shards' statistics itself, src/ml/train/parallel/).
 */
export function setBatchStatsSink(sink: BatchStatsSink | undefined): void {
  batchStatsSink = sink;
}

function updateMoving(p: BatchNormParams, mean: tf.Tensor1D, variance: tf.Tensor1D, m: number): void {
  if (batchStatsSink) return batchStatsSink(p, mean, variance, m);
  const mom = p.momentum;
  const unbiased = m > 1 ? tf.mul(variance, m / (m - 1)) : variance;
  p.movingMean.assign(tf.add(tf.mul(p.movingMean, mom), tf.mul(mean, 1 - mom)));
  p.movingVariance.assign(tf.add(tf.mul(p.movingVariance, mom), tf.mul(unbiased, 1 - mom)));
}

/** 1x1 convolution, no bias, as a matmul over [N*H*W, Cin] (its gradients are matmuls too). */
export function pointwise(x: tf.Tensor4D, kernel: tf.Tensor2D): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  const y = tf.matMul(tf.reshape(x, [n * h * w, c]) as tf.Tensor2D, kernel);
  return tf.reshape(y, [n, h, w, kernel.shape[1]]);
}

export interface DenseParams {
  kernel: tf.Variable;
  bias?: tf.Variable;
}

/** PyTorch's default Linear init: U(+-1/sqrt(fan_in)) for weight and bias. */
export function createDense(store: ParamStore, name: string, inDim: number, outDim: number, bias = true): DenseParams {
  const bound = 1 / Math.sqrt(inDim);
  return {
    kernel: store.uniform(`${name}/kernel`, [inDim, outDim], bound),
    bias: bias ? store.uniform(`${name}/bias`, [outDim], bound) : undefined,
  };
}

export function dense(x: tf.Tensor2D, p: DenseParams): tf.Tensor2D {
  const y = tf.matMul(x, p.kernel) as tf.Tensor2D;
  return p.bias ? (tf.add(y, p.bias) as tf.Tensor2D) : y;
}
