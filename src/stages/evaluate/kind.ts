// evaluate: verification metrics on the validation and test pairs.
import type { StageKind } from '../../contracts/stage-kind.js';

export interface EvaluateParams {
  batch_size: number;
  flip_average: boolean;
  threshold_rule: 'eer' | 'accuracy';
  predictions_rule: 'threshold' | 'median';
  runtime?: 'onnx' | 'tfjs';
  protocol: 'lfw10' | null;
}

export const paramsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    batch_size: {
      type: 'integer',
      minimum: 1,
      default: 64,
      description: 'Images per embedding batch (memory only; no effect on results).',
    },
    flip_average: {
      type: 'boolean',
      default: false,
      description:
        'Embed each image and its mirror image and average the two embeddings (test-time augmentation; the original does not).',
    },
    threshold_rule: {
      enum: ['eer', 'accuracy'],
      default: 'eer',
      description:
        'How the threshold is chosen on validation: at its equal-error point (transfers well from a few validation identities), or maximising its accuracy (overfits them).',
    },
    predictions_rule: {
      enum: ['threshold', 'median'],
      default: 'threshold',
      description:
        "Rule of predictions.csv: the threshold chosen on validation, or the original's median of the test distances.",
    },
    protocol: {
      enum: [null, 'lfw10'],
      default: null,
      description:
        "An extra protocol on the test pairs. lfw10: LFW's 10-fold accuracy (mean, std, standard error), each fold's threshold chosen on the other 9 (by accuracy), with the folds of the pairs file (an LFW pairs.txt) or, when the pairs carry none, 10 balanced folds dealt in order. null: none.",
    },
    runtime: {
      enum: ['onnx', 'tfjs'],
      description:
        "What embeds the images: 'onnx' runs the prune stage's model.onnx on onnxruntime-node (an optional dependency; several times faster on CPU), 'tfjs' the TensorFlow.js model on the stage's backend. Unset: onnx when onnxruntime-node is installed and the model has a model.onnx, else tfjs (like the backend, not part of the cache key). Both compute the same embeddings up to float rounding; metrics.json and the run record say which ran.",
    },
  },
} as const;

export const kind: StageKind<EvaluateParams> = {
  name: 'evaluate',
  // 4: roc.png marks the EER point and has a log-FAR panel beside the linear one.
  // 5: predictions.csv has a distance column; TAR at FAR 1e-4; TARs null below 1/FAR negatives; protocol lfw10.
  version: '5',
  description:
    'Embeds the pairs; accuracy by the median rule and by a validation-chosen threshold, ROC AUC, EER, TAR at FAR 1e-2 / 1e-3 / 1e-4 (null below 1/FAR different-person pairs), optionally LFW 10-fold accuracy.',
  paramsSchema,
  inputs: () => [
    { name: 'model', description: "A prune stage's 'model' output (an inference model)." },
    { name: 'dataset', description: 'The image folder the split was made from.' },
    { name: 'splits', description: "A split stage's 'splits' output (validation.csv and test.csv)." },
  ],
  outputs: () => [
    {
      name: 'report',
      type: 'dir',
      description:
        'metrics.json (test and validation figures, threshold, parameter count, notes on null figures), predictions.csv (test pairs in the original format, image1,image2,label with 1 = different person, plus the distance), roc.png (ROC curves, linear and log FAR, EER point marked), roc.json (their points: far, tar, thresholds per set).',
    },
  ],
  runModule: './run.js',
  usesTensorflow: true,
  headline: [
    { metric: 'auc', goal: 'max' },
    { metric: 'accuracy', goal: 'max' },
    { metric: 'eer', goal: 'min' },
  ],
};

export default kind;
