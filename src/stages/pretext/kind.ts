// pretext: trains the backbone on attribute classes (the original: camera angle + expression), or on
// predicting the image's rotation (0/90/180/270) when the dataset has no attributes.
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

export interface PretextParams {
  seed: number;
  task: 'auto' | 'attributes' | 'rotation';
  attributes: string[];
  backbone: BackboneParams;
  epochs: number;
  batch_size: number;
  optimizer: OptimizerParams;
  augment: { resize: number | null; flip: number; rotation: number; erasing: number };
  validate_every: number;
  heldout_images: number;
  micro_batch: number | null;
  shards: number;
}

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
        flip: {
          type: 'number',
          minimum: 0,
          maximum: 1,
          default: 0.5,
          description:
            'Horizontal flip probability. Labels are kept, so a left/right attribute such as pose becomes noise on flipped images.',
        },
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
    validate_every: {
      type: 'integer',
      minimum: 1,
      default: 1,
      description:
        'Measure held-out accuracy (each head on images of the validation identities, next to chance) every N epochs and after the last.',
    },
    heldout_images: {
      type: 'integer',
      minimum: 1,
      default: 512,
      description: "At most this many held-out images (a seeded sample of the validation identities' images).",
    },
    micro_batch: microBatchSchema,
    shards: shardsSchema,
  },
} as const;

export const kind: StageKind<PretextParams> = {
  name: 'pretext',
  version: '2',
  description: 'Pretext training of the backbone on attribute classes (e.g. pose + expression) or on image rotation.',
  paramsSchema,
  inputs: () => [
    { name: 'dataset', description: 'The image folder the split was made from.' },
    { name: 'splits', description: "A split stage's 'splits' output (train.csv is used)." },
  ],
  outputs: () => [
    {
      name: 'backbone',
      type: 'dir',
      description:
        'Backbone weights and config (the classifier heads are dropped); training.json: the loss per epoch and held-out accuracy per head, with chance.',
    },
  ],
  runModule: './run.js',
  usesTensorflow: true,
  resources: (_params, backend) => trainingResources(backend),
  // Held-out accuracy per head; rotation is the head when the task is rotation or auto falls back to it.
  headline: (p) => [
    ...(p.task === 'rotation' ? [] : p.attributes.map((a) => ({ metric: `heldout_${a}`, goal: 'max' as const }))),
    ...(p.task === 'attributes' ? [] : [{ metric: 'heldout_rotation', goal: 'max' as const }]),
  ],
  // Multi-step milestones are epochs, held-out accuracy is measured every N epochs: E epochs are a prefix of more.
  epochPrefix: {
    param: 'epochs',
    blocker: (p) =>
      p.optimizer.schedule === 'cosine' ? 'optimizer.schedule cosine depends on the epoch count' : undefined,
  },
};

export default kind;
