export * from './augment.js';
export * from './batches.js';
export * from './cache.js';
export * from './dataset.js';
export * from './image.js';
export * from './netpbm.js';
export * from './rng.js';
export * from './sampler.js';
