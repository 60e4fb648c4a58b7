// pretext: trains the backbone on attribute classes (the original: camera angle + expression), or on
// predicting the image's rotation (0/90/180/270) when the dataset has no attributes.
import type { StageKind } from '../../contracts/stage-kind.js';
import {
  backboneSchema,
  microBatchSchema,
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
  micro_batch: number | null;
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
  resources: (_params, backend) => trainingResources(backend),
};

export default kind;
