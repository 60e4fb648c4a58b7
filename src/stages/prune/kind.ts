// prune: strips the training-only layers and enforces the parameter cap.
import type { StageKind } from '../../contracts/stage-kind.js';

export interface PruneParams {
  max_params: number | null;
}

export const paramsSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    max_params: {
      type: ['integer', 'null'],
      minimum: 1,
      default: 5_000_000,
      description:
        'Fail when the inference model has more parameters (the challenge cap: 5,000,000; the original has 4,663,420). null: no cap.',
    },
  },
} as const;

export const kind: StageKind<PruneParams> = {
  name: 'prune',
  version: '2',
  description:
    'Drops the identity head, its BatchNorm and the class centres; saves the inference model (TF.js and ONNX) and checks its parameter count.',
  paramsSchema,
  inputs: () => [{ name: 'model', description: "A triarchy stage's 'model' output." }],
  outputs: () => [
    {
      name: 'model',
      type: 'dir',
      description:
        "Inference model (backbone + embedding layer): TF.js model.json + weights.bin, and model.onnx (opset 13; input 'image' float32 [N, S, S, 3] NHWC, RGB / 255 in [0, 1], as its metadata says; output 'embedding' [N, D]).",
    },
  ],
  runModule: './run.js',
  usesTensorflow: true,
};

export default kind;
