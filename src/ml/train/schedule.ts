// Learning-rate schedules that are plain arithmetic (no TensorFlow.js), so stage kinds can name them cheaply.

/**
 * Cosine annealing from lr towards 0 over `epochs`, stepped once per epoch (1-based). Unlike MultiStepLR it depends
 * on the epoch count, so training to E epochs is not a prefix of training to more.
 */
export function cosineLr(lr: number, epoch: number, epochs: number): number {
  return epochs > 0 ? (lr * (1 + Math.cos((Math.PI * (epoch - 1)) / epochs))) / 2 : lr;
}
