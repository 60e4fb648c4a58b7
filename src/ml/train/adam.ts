// Adam with PyTorch's update rule (bias-corrected, eps outside the sqrt, no weight decay). Own
// implementation rather than tf.train.adam so the learning rate can change per epoch and the
// moments and step count can be checkpointed and restored exactly.
import * as tf from '@tensorflow/tfjs-core';
import { fusedAdamFor } from '../kernels/fused-adam.js';

export interface AdamConfig {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

export class Adam {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  /** Number of updates applied so far (PyTorch's `step`). */
  step = 0;
  /** First and second moments, one per variable, same order as `vars`. */
  m: tf.Tensor[];
  v: tf.Tensor[];

  constructor(
    readonly vars: tf.Variable[],
    cfg: AdamConfig = {},
  ) {
    this.beta1 = cfg.beta1 ?? 0.9;
    this.beta2 = cfg.beta2 ?? 0.999;
    this.epsilon = cfg.epsilon ?? 1e-8;
    this.m = vars.map((v) => tf.keep(tf.zerosLike(v)));
    this.v = vars.map((v) => tf.keep(tf.zerosLike(v)));
  }

  /** One update; variables without a gradient (not connected to the loss) are left alone, moments included. */
  apply(grads: Array<tf.Tensor | undefined>, lr: number): void {
    this.step++;
    const b1 = this.beta1;
    const b2 = this.beta2;
    const bc1 = 1 - b1 ** this.step;
    const bc2 = 1 - b2 ** this.step;
    const stepSize = lr / bc1;
    const sqrtBc2 = Math.sqrt(bc2);
    // A backend's fused update (WebGPU) takes what it can; the rest goes op by op.
    const h = { beta1: b1, beta2: b2, epsilon: this.epsilon, stepSize, sqrtBc2 };
    const done = fusedAdamFor(tf.getBackend())?.(this.vars, grads, this.m, this.v, h);
    this.vars.forEach((p, i) => {
      const g = grads[i];
      if (!g || done?.[i]) return;
      const [m, v] = tf.tidy(() => {
        const m = tf.add(tf.mul(this.m[i], b1), tf.mul(g, 1 - b1));
        const v = tf.add(tf.mul(this.v[i], b2), tf.mul(tf.square(g), 1 - b2));
        const denom = tf.add(tf.div(tf.sqrt(v), sqrtBc2), this.epsilon);
        p.assign(tf.sub(p, tf.mul(tf.div(m, denom), stepSize)));
        return [m, v];
      });
      this.m[i].dispose();
      this.v[i].dispose();
      this.m[i] = tf.keep(m);
      this.v[i] = tf.keep(v);
    });
  }

  /** Replaces the moments (e.g. from a checkpoint); takes ownership of the tensors. */
  setState(step: number, m: tf.Tensor[], v: tf.Tensor[]): void {
    if (m.length !== this.vars.length || v.length !== this.vars.length)
      throw new Error('Adam state does not match the variables');
    this.dispose();
    this.step = step;
    this.m = m.map((t) => tf.keep(t));
    this.v = v.map((t) => tf.keep(t));
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
    this.m = [];
    this.v = [];
  }
}

/** MultiStepLR stepped once per epoch: learning rate for 1-based `epoch` = lr * gamma^#{milestones <= epoch-1}. */
export function multiStepLr(lr: number, epoch: number, milestones: number[] = [], gamma = 0.1): number {
  const passed = milestones.filter((m) => m <= epoch - 1).length;
  return lr * gamma ** passed;
}
