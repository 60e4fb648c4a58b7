// Names of facepipe's fused WebGPU kernels (no imports, so the model code can test for them cheaply).

/** Inputs x, gamma, beta, movingMean, movingVariance; attrs epsilon, momentum. Outputs [y, mean, variance (biased),
 * new movingMean, new movingVariance (moving = moving * momentum + batch * (1 - momentum), variance unbiased)]. */
export const FP_WG_BATCH_NORM_TRAIN = 'FacepipeWebGpuBatchNormTrain';
/** x * sigmoid(x) in one pass. */
export const FP_WG_SWISH = 'FacepipeWebGpuSwish';
/** Inputs dy, x: dy * s * (1 + x * (1 - s)), s = sigmoid(x) recomputed (the forward saves no sigmoid). */
export const FP_WG_SWISH_GRAD = 'FacepipeWebGpuSwishGrad';
// The batch norm gradient uses the wasm kernel's name and contract: FP_BATCH_NORM_GRAD in ../batchnorm.ts.
