// Contracts between the ML modules (model <-> trainer <-> stage kinds).
import type * as tf from '@tensorflow/tfjs-core';

export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';
export type BackendPreference = 'auto' | BackendName;

export interface BackendInfo {
  name: BackendName;
  /** e.g. '@tensorflow/tfjs-backend-wasm 4.22.0' */
  version: string;
  /** Human detail: 'GPU', 'CPU', 'SIMD on, 1 thread', ... */
  detail: string;
  /** webgpu: the adapter it runs on ('nvidia ..., hardware', 'mesa software, llvmpipe ..., software'). */
  adapter?: string;
}

export interface BackboneConfig {
  /** EfficientNet width multiplier (B0 = 1). */
  width: number;
  /** EfficientNet depth multiplier (B0 = 1). */
  depth: number;
  /** Input side in pixels (square input, [N, size, size, 3], values in [0, 1]). */
  inputSize: number;
  /** BatchNorm momentum in TensorFlow's convention (the original's PyTorch 0.01 is 0.99 here). */
  bnMomentum: number;
  /** Drop-connect base rate; block idx uses rate * idx / numBlocks. */
  dropConnect: number;
}

/** A network the trainer can optimise. Implemented by the Triarchy and pretext models. */
export interface TrainableNet {
  /** Variables the optimiser updates (backbone, heads and, for Triarchy, the class centres). */
  trainableVariables(): tf.Variable[];
  /** Variables saved in checkpoints but not optimised (BN moving statistics). */
  stateVariables(): tf.Variable[];
  /**
   * Forward pass. training=true uses batch statistics, updates BN moving statistics and applies
   * drop-connect. Returns named heads, e.g. { embedding: [N, 512], logits: [N, C] } for Triarchy,
   * { logits_pose: [N, 4], logits_expression: [N, 4] } for pretext.
   */
  apply(x: tf.Tensor4D, training: boolean): Record<string, tf.Tensor>;
  dispose(): void;
  /**
   * Optional: reseed the net's per-step randomness (drop-connect) for the following apply() calls.
   * trainNet calls it before every training forward pass with a seed derived from (run seed, step,
   * chunk), so a resumed run replays the same masks, and micro-batching's two passes over a chunk agree.
   */
  setStepSeed?(seed: string): void;
}
