// Hook through which a backend supplies a fused Adam update (WebGPU: several variables per dispatch, in place).
// The optimiser (src/ml/train/adam.ts) asks for it per update; backends without one use the op-by-op path.
import type { Tensor } from '@tensorflow/tfjs-core';

export interface AdamHyper {
  beta1: number;
  beta2: number;
  epsilon: number;
  /** lr / (1 - beta1^t) */
  stepSize: number;
  /** sqrt(1 - beta2^t) */
  sqrtBc2: number;
}

/**
 * Updates vars[i], m[i], v[i] for every i with a gradient it can handle in place, exactly as the op path would
 * (PyTorch's rule); returns which indices it did (the optimiser does the rest op by op).
 */
export type FusedAdam = (
  vars: Tensor[],
  grads: Array<Tensor | undefined>,
  m: Tensor[],
  v: Tensor[],
  h: AdamHyper,
) => boolean[];

const fused = new Map<string, FusedAdam>();

export function setFusedAdam(backend: string, fn: FusedAdam | undefined): void {
  if (fn) fused.set(backend, fn);
  else fused.delete(backend);
}

export function fusedAdamFor(backend: string): FusedAdam | undefined {
  return fused.get(backend);
}
