// Rough training-memory model for choosing `microBatch` on wasm (hard 4 GiB heap; exceeding it kills the
// process with `Aborted()`, which cannot be caught and recovered from).
// Measured here (tfjs-backend-wasm 4.22, EfficientNet-B0 + 512-d head, Triarchy losses): wasm heap after a
// training step 807 MiB at 64 px x 16 images, 1295 MiB at 112 px with 8-image chunks: about 12 KB per
// input pixel per image at width 1, roughly linear in the width multiplier.
export const WASM_TRAIN_BYTES_PER_PIXEL = 12_000;
export const WASM_TRAIN_BUDGET_BYTES = 2.5 * 2 ** 30;

/** Estimated bytes to train on one image of side `inputSize` with an EfficientNet of `width`. */
export function estimateTrainBytesPerImage(inputSize: number, width = 1): number {
  return WASM_TRAIN_BYTES_PER_PIXEL * inputSize * inputSize * Math.max(width, 0.1);
}

/**
 * The largest micro-batch whose estimated memory fits `budgetBytes`, or undefined when the whole batch
 * fits (no micro-batching needed). At least 1.
 */
export function suggestMicroBatch(
  batchSize: number,
  inputSize: number,
  width = 1,
  budgetBytes = WASM_TRAIN_BUDGET_BYTES,
): number | undefined {
  const fit = Math.max(1, Math.floor(budgetBytes / estimateTrainBytesPerImage(inputSize, width)));
  return fit >= batchSize ? undefined : fit;
}
