// triarchy: the face-embedding model trained with identity + batch-hard triplet + center losses,
// validated every N epochs, keeping the best checkpoint.
import type { StageKind } from '../../contracts/stage-kind.js';
import {
  backboneSchema,
  microBatchSchema,
  shardsSchema,
  optimizerSchema,
  type BackboneParams,
  type OptimizerParams,
} from '../shared/backbone-params.js';
import { trainingResources } from '../shared/resources.js';

export interface TriarchyParams {
  seed: number;
  init: 'pretext' | 'scratch';
  backbone: BackboneParams;
  embedding_dim: number;
  epochs: number;
  sampler: { identities: number; images: number };
  optimizer: OptimizerParams;
  loss: {
    weights: { identity: number; triplet: number; center: number };
    margin: number | null;
    label_smoothing: number;
  };
  augment: { flip: number };
  validate_every: number;
  select_by: 'accuracy' | 'auc';
  flip_average: boolean;
  recalibrate_bn: boolean;
  micro_batch: number | null;
  shards: number;
}

export const paramsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    seed: { type: 'integer', default: 0, description: 'Seed of initialisation, batches and augmentation.' },
    init: {
      enum: ['pretext', 'scratch'],
      default: 'pretext',
      description:
        "pretext: start from the pretext stage's backbone (input 'pretext' required); scratch: random initialisation.",
    },
    backbone: backboneSchema,
    embedding_dim: {
      type: 'integer',
      minimum: 2,
      default: 512,
      description: 'Embedding size (Dense after the pooled backbone, no activation, no BN).',
    },
    epochs: {
      type: 'integer',
      minimum: 0,
      default: 110,
      description: 'Training epochs (an epoch = floor(identities / P) P x K batches, as the original).',
    },
    sampler: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'P x K batches: P identities with K images each.',
      properties: {
        identities: { type: 'integer', minimum: 2, default: 8, description: 'P, identities per batch.' },
        images: {
          type: 'integer',
          minimum: 2,
          default: 16,
          description: 'K, images per identity (drawn with replacement when an identity has fewer).',
        },
      },
    },
    optimizer: optimizerSchema,
    loss: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'total = identity * label-smoothed CE + triplet * batch-hard triplet + center * center loss.',
      properties: {
        weights: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: 'Weight of each term.',
          properties: {
            identity: { type: 'number', minimum: 0, default: 1, description: 'Identity (softmax) loss weight.' },
            triplet: { type: 'number', minimum: 0, default: 1, description: 'Batch-hard triplet loss weight.' },
            center: { type: 'number', minimum: 0, default: 1, description: 'Center loss weight.' },
          },
        },
        margin: {
          type: ['number', 'null'],
          minimum: 0,
          default: null,
          description: 'Triplet hinge margin; null: soft margin log(1 + exp(d_ap - d_an)) (the original).',
        },
        label_smoothing: {
          type: 'number',
          minimum: 0,
          maximum: 1,
          default: 0.1,
          description: 'Label smoothing epsilon of the identity loss.',
        },
      },
    },
    augment: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'The original: horizontal flip only.',
      properties: {
        flip: { type: 'number', minimum: 0, maximum: 1, default: 0.5, description: 'Horizontal flip probability.' },
      },
    },
    validate_every: {
      type: 'integer',
      minimum: 1,
      default: 10,
      description: 'Validate every N epochs (and after the last); the best checkpoint is kept.',
    },
    select_by: {
      enum: ['accuracy', 'auc'],
      default: 'accuracy',
      description:
        "Validation figure that picks the best checkpoint: accuracy by the original's median-distance rule, or ROC AUC.",
    },
    flip_average: {
      type: 'boolean',
      default: false,
      description:
        'Validation embeds each image and its mirror image and averages them (as evaluate.flip_average); the original does not.',
    },
    recalibrate_bn: {
      type: 'boolean',
      default: false,
      description:
        'Before each validation, re-estimate BatchNorm moving statistics as the average over the training images (precise BN); rescues slow momenta such as 0.99 on small data. The original does not.',
    },
    micro_batch: microBatchSchema,
    shards: shardsSchema,
  },
} as const;

export const kind: StageKind<TriarchyParams> = {
  name: 'triarchy',
  version: '1',
  description:
    'Triarchy training (identity + triplet + center losses) with periodic validation and best-checkpoint selection.',
  paramsSchema,
  inputs: (p) => [
    { name: 'dataset', description: 'The image folder the split was made from.' },
    {
      name: 'splits',
      description: "A split stage's 'splits' output (train.csv for training, validation.csv for checkpoint selection).",
    },
    {
      name: 'pretext',
      optional: p.init !== 'pretext',
      description: "A pretext stage's 'backbone' output (used when init is pretext).",
    },
  ],
  outputs: () => [
    {
      name: 'model',
      type: 'dir',
      description:
        'The best checkpoint: full training model (backbone, embedding, identity head, centres) and its config; training.json: the loss and its parts per epoch, the validation figures, the best epoch.',
    },
  ],
  runModule: './run.js',
  usesTensorflow: true,
  resources: (_params, backend) => trainingResources(backend),
  headline: [
    { metric: 'val_auc', goal: 'max' },
    { metric: 'val_accuracy', goal: 'max' },
  ],
  // Multi-step milestones are epochs, and validation comes every N epochs: E epochs are a prefix of more.
  epochPrefix: {
    param: 'epochs',
    blocker: (p) =>
      p.optimizer.schedule === 'cosine' ? 'optimizer.schedule cosine depends on the epoch count' : undefined,
  },
};

export default kind;
