// The shape of a sweep section (a pipeline's `sweep:`, or a --sweep-file), checked by ajv like every other file;
// each param's domain (a list or range/uniform/loguniform) is read by src/plan/sweep.ts, which words its errors.

export const HALVING_KEYS = ['metric', 'mode', 'eta', 'min_epochs', 'max_epochs'] as const;

export const sweepSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['params'],
  properties: {
    method: {
      enum: ['grid', 'random', 'halving', 'hyperband'],
      description:
        'grid: every combination; random: `samples` seeded points; halving: successive halving over epochs; hyperband: brackets of halving, each over its own random points.',
    },
    samples: { type: 'integer', minimum: 1, description: 'Random points to draw (random, or halving).' },
    seed: { type: 'integer', description: 'Seed of the random points.' },
    params: { type: 'object', description: 'stage.param -> a list of values, or { range | uniform | loguniform }.' },
    metric: {
      type: 'string',
      pattern: '^[A-Za-z][A-Za-z0-9_-]*\\.[^.\\s][^\\s]*$',
      'x-pattern-message': 'must be stage.metric',
      'x-hint': 'e.g. metric: triarchy.val_auc',
      description: 'halving: the validation metric that ranks the points (a metric of the stage trained in rungs).',
    },
    mode: { enum: ['max', 'min'], description: 'halving: whether a higher or a lower metric is better.' },
    eta: { type: 'number', exclusiveMinimum: 1, description: 'halving: keep the best 1/eta at each rung (default 3).' },
    min_epochs: { type: 'integer', minimum: 1, description: 'halving: the epochs of the first rung.' },
    max_epochs: { type: 'integer', minimum: 1, description: 'halving: the epochs of the last rung.' },
  },
  allOf: [
    {
      if: { properties: { method: { enum: ['halving', 'hyperband'] } }, required: ['method'] },
      then: { required: ['min_epochs', 'max_epochs'] },
    },
  ],
} as const;
