// pretext: trains the backbone on attribute classes (the original: camera angle + expression), or on
// predicting the image's rotation (0/90/180/270) when the dataset has no attributes.
import type { StageKind } from '../kind.js';

export interface BackboneParams {
  width: number;
  depth: number;
  input_size: number;
  bn_momentum: number;
  drop_connect: number;
}

export interface OptimizerParams {
  lr: number;
  milestones: number[];
  gamma: number;
}

export interface PretextParams {
  seed: number;
  task: 'auto' | 'attributes' | 'rotation';
  attributes: string[];
  backbone: BackboneParams;
  epochs: number;
  batch_size: number;
  optimizer: OptimizerParams;
  augment: { resize: number | null; flip: number; rotation: number; erasing: number };
  micro_batch: number | null;
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
  description: 'Adam with a multi-step learning-rate schedule stepped per epoch.',
  properties: {
    lr: { type: 'number', exclusiveMinimum: 0, default: 0.001, description: 'Initial learning rate.' },
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

export const paramsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    seed: { type: 'integer', default: 0, description: 'Seed of initialisation, batches and augmentation.' },
    task: {
      enum: ['auto', 'attributes', 'rotation'],
      default: 'auto',
      description:
        'attributes: one classifier per listed attribute; rotation: predict 0/90/180/270 degrees (self-supervised); auto: attributes when the split has them all, else rotation.',
    },
    attributes: {
      type: 'array',
      items: { type: 'string' },
      default: ['pose', 'expression'],
      description: 'Attribute columns of the split to classify (the original: camera angle and expression).',
    },
    backbone: backboneSchema,
    epochs: { type: 'integer', minimum: 0, default: 7, description: 'Training epochs over the training images.' },
    batch_size: {
      type: 'integer',
      minimum: 2,
      default: 128,
      description: 'Images per batch (last incomplete batch dropped).',
    },
    optimizer: optimizerSchema,
    augment: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'The original: Resize 256, RandomCrop 224, flip 0.5, rotation +-30, random erasing p=1.',
      properties: {
        resize: {
          type: ['integer', 'null'],
          minimum: 16,
          default: null,
          description: 'Decode size before the random crop to input_size; null: input_size * 256/224.',
        },
        flip: { type: 'number', minimum: 0, maximum: 1, default: 0.5, description: 'Horizontal flip probability.' },
        rotation: {
          type: 'number',
          minimum: 0,
          maximum: 180,
          default: 30,
          description: 'Random rotation range in degrees (+-).',
        },
        erasing: { type: 'number', minimum: 0, maximum: 1, default: 1, description: 'Random erasing probability.' },
      },
    },
    micro_batch: microBatchSchema,
  },
} as const;

export const kind: StageKind<PretextParams> = {
  name: 'pretext',
  version: '1',
  description: 'Pretext training of the backbone on attribute classes (e.g. pose + expression) or on image rotation.',
  paramsSchema,
  inputs: () => [
    { name: 'dataset', description: 'The image folder the split was made from.' },
    { name: 'splits', description: "A split stage's 'splits' output (train.csv is used)." },
  ],
  outputs: () => [
    { name: 'backbone', type: 'dir', description: 'Backbone weights and config (the classifier heads are dropped).' },
  ],
  runModule: './run.js',
  usesTensorflow: true,
};

export default kind;
