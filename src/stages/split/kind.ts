// split: identity-disjoint train / validation / test sets and balanced verification pairs.
import type { StageKind } from '../../contracts/stage-kind.js';

export interface SplitParams {
  seed: number;
  dataset: {
    manifest: string | null;
    attribute_pattern: string | null;
    extensions: string[] | 'any' | null;
    on_error: 'fail' | 'skip';
  };
  identities: { validation: number; test: number };
  pairs: { per_set: number | null; cross_attribute: string | null; csv_different_label: 0 | 1 };
}

export const paramsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    seed: { type: 'integer', default: 0, description: 'Seed of the identity shuffle and the pair sampling.' },
    dataset: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'How to list the dataset input: a folder per identity, or a CSV manifest.',
      properties: {
        manifest: {
          type: ['string', 'null'],
          default: null,
          // Inside the dataset folder, whose digest is part of the key: a manifest elsewhere would be read unhashed.
          pattern: '^(?![/\\\\])(?!(.*[/\\\\])?\\.\\.([/\\\\]|$)).+$',
          'x-pattern-message': 'must be a path inside the dataset folder (relative to it, without "..")',
          'x-hint': 'move the manifest into the dataset folder, or point the dataset input at a folder holding both',
          description:
            "CSV manifest relative to the dataset folder and inside it (header with file and identity columns, e.g. file_name,face_id; other columns become attributes); its file paths are relative to the manifest's own folder, else to the dataset folder. null: one sub-folder per identity, or a flat folder when attribute_pattern names the identity.",
        },
        attribute_pattern: {
          type: ['string', 'null'],
          default: null,
          description:
            'Regular expression with named groups applied to each file name; groups become attributes (e.g. pose, expression); a group named identity overrides the folder, and lets a flat folder (no sub-folders) list its files.',
        },
        extensions: {
          anyOf: [{ type: 'array', items: { type: 'string' } }, { const: 'any' }, { type: 'null' }],
          default: null,
          description:
            "Image file extensions to list (null: png, jpg, jpeg, webp, gif, tif, tiff, avif, pgm, ppm, pnm). 'any': every file whose content is an image facepipe reads (PNG, JPEG, GIF, WebP, TIFF, AVIF, PGM/PPM), for files without extensions.",
        },
        on_error: {
          enum: ['fail', 'skip'],
          default: 'fail',
          description:
            'An entry that does not fit (pattern mismatch, missing file, an image whose header cannot be read): fail, or skip it, log it and count it.',
        },
      },
    },
    identities: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description:
        'How many identities go to validation and test (a count >= 1 or a fraction < 1 of all identities); the rest train. A set whose pairs are given takes the identities of its listed pair images instead.',
      properties: {
        validation: {
          type: 'number',
          minimum: 0,
          default: 3,
          description: 'Validation identities (threshold choice, checkpoint selection).',
        },
        test: { type: 'number', minimum: 0, default: 6, description: 'Test identities (final figures only).' },
      },
    },
    pairs: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'Verification pairs of the validation and test sets (generated unless a pairs CSV input is wired).',
      properties: {
        per_set: {
          type: ['integer', 'null'],
          minimum: 1,
          default: null,
          description:
            'Same-person pairs per set (as many different-person pairs are added). null: every same-person pair (only cross-attribute ones when the attribute exists).',
        },
        cross_attribute: {
          type: ['string', 'null'],
          default: 'pose',
          description:
            'Prefer pairs whose images differ in this attribute (the challenge paired front with side views). Ignored when the data lacks it; null: no preference.',
        },
        csv_different_label: {
          enum: [0, 1],
          default: 1,
          description:
            'For pairs given as CSV inputs (image1,image2,label): the label value meaning "different person" (the original challenge: 1).',
        },
      },
    },
  },
} as const;

export const kind: StageKind<SplitParams> = {
  name: 'split',
  // 2: every image header is checked; under on_error: skip an unreadable image is left out of the split.
  // 3: given pairs (CSV or LFW pairs.txt) need no listing or identity and resolve relative to their file; folds kept;
  //    flat folders; manifest paths relative to the manifest; gif/tif/avif listed by default; extensions: any.
  // 4: validation_images.csv (the validation identities' listed images, for pretext's held-out accuracy).
  version: '4',
  description:
    'Identity-disjoint train/validation/test split with balanced same/different verification pairs (cross-pose preferred).',
  paramsSchema,
  inputs: () => [
    { name: 'dataset', description: 'Image folder (one sub-folder per identity, or files listed by a CSV manifest).' },
    {
      name: 'validation_pairs',
      optional: true,
      description:
        "Validation pairs: a CSV (image1,image2,label; paths relative to the CSV's folder when it lies in the dataset folder, else to the dataset folder; the images need be in no listing) or an LFW pairs.txt (folds kept). Unwired: generated.",
    },
    {
      name: 'test_pairs',
      optional: true,
      description:
        'Test pairs, as validation_pairs (an LFW pairs.txt keeps its folds for evaluate.protocol lfw10). Unwired: generated.',
    },
  ],
  outputs: () => [
    {
      name: 'splits',
      type: 'dir',
      description:
        "train.csv (file,identity,attributes), validation.csv and test.csv (image1,image2,label; 1 = different person), validation_images.csv (the validation identities' images, as train.csv), summary.json.",
    },
  ],
  runModule: './run.js',
};

export default kind;
