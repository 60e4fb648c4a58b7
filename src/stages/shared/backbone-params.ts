// What the training kinds (pretext, triarchy) share: the EfficientNet backbone, optimizer and micro-batch
// params (same names, same defaults, one schema each) and their mapping onto the ML layer's config.
import { cosineLr } from '../../ml/train/schedule.js';
import type { BackboneConfig } from '../../ml/types.js';

export interface BackboneParams {
  width: number;
  depth: number;
  input_size: number;
  bn_momentum: number;
  drop_connect: number;
}

export interface OptimizerParams {
  lr: number;
  schedule: 'multistep' | 'cosine';
  milestones: number[];
  gamma: number;
}

/** EfficientNet backbone shape and BN settings; shared by pretext and triarchy (same names, same defaults). */
export const backboneSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description:
    'EfficientNet backbone. The original: B0 (width 1, depth 1), 256 px, BN momentum 0.99 (TF convention), drop-connect 0.2.',
  properties: {
    width: { type: 'number', exclusiveMinimum: 0, default: 1, description: 'Width multiplier (channels; B0 = 1).' },
    depth: {
      type: 'number',
      exclusiveMinimum: 0,
      default: 1,
      description: 'Depth multiplier (block repeats; B0 = 1).',
    },
    input_size: {
      type: 'integer',
      minimum: 16,
      default: 256,
      description: 'Square input side in pixels; images are resized to it.',
    },
    bn_momentum: {
      type: 'number',
      minimum: 0,
      exclusiveMaximum: 1,
      default: 0.99,
      description:
        'BatchNorm moving-average momentum, TensorFlow convention (PyTorch 0.01 = 0.99 here). 0.9 suits small datasets.',
    },
    drop_connect: {
      type: 'number',
      minimum: 0,
      maximum: 1,
      default: 0.2,
      description: 'Drop-connect base rate (block i uses rate * i / blocks).',
    },
  },
} as const;

export const optimizerSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'Adam with a learning-rate schedule stepped per epoch (multi-step, as the original, or cosine).',
  properties: {
    lr: { type: 'number', exclusiveMinimum: 0, default: 0.001, description: 'Initial learning rate.' },
    schedule: {
      enum: ['multistep', 'cosine'],
      default: 'multistep',
      description:
        'multistep: lr x gamma after each milestone epoch (the original); cosine: anneal lr towards 0 over all epochs (milestones and gamma unused; depends on epochs, so a run with more epochs cannot continue from a shorter one).',
    },
    milestones: {
      type: 'array',
      items: { type: 'integer', minimum: 1 },
      default: [30, 80, 120],
      description: 'Epochs after which the LR is multiplied by gamma.',
    },
    gamma: { type: 'number', exclusiveMinimum: 0, default: 0.333, description: 'LR factor at each milestone.' },
  },
} as const;

export const microBatchSchema = {
  type: ['integer', 'null'],
  minimum: 1,
  default: null,
  description:
    'Forward/backward in chunks of this many images (wasm has 4 GiB); null: whole batch. BN statistics become per chunk.',
} as const;

export const shardsSchema = {
  type: 'integer',
  minimum: 1,
  maximum: 64,
  default: 2,
  description:
    "Each batch is computed as this many near-equal shards: BatchNorm normalises each shard by its own batch statistics (the moving statistics are those of the whole batch), the loss sees the whole batch, and the shards' gradients are summed in shard order. Up to this many worker threads (one per core the stage may use) compute the shards in parallel; the result does not depend on how many. Ignored with micro_batch.",
} as const;

/** Backbone params (snake_case, as users write them) to the model layer's config. */
export function backboneConfig(b: BackboneParams): BackboneConfig {
  return {
    width: b.width,
    depth: b.depth,
    inputSize: b.input_size,
    bnMomentum: b.bn_momentum,
    dropConnect: b.drop_connect,
  };
}

/** The learning rate of each 1-based epoch under the optimizer params, or undefined for the trainer's multi-step. */
export function learningRate(o: OptimizerParams, epochs: number): ((epoch: number) => number) | undefined {
  return o.schedule === 'cosine' ? (epoch) => cosineLr(o.lr, epoch, epochs) : undefined;
}
