// The general stage kind: any shell command with declared inputs and outputs, as DVC stages are.
import type { StageKind } from '../../contracts/stage-kind.js';

export interface CommandParams {
  cmd: string;
  outputs: Record<string, 'file' | 'dir'>;
  env: Record<string, string | number | boolean>;
  /** A file output holding a JSON object whose numbers and strings become the stage's metrics. */
  metrics?: string;
  /** Its headline metrics, most important first; `name:min` when lower is better. */
  headline?: string[];
}

export const kind: StageKind<CommandParams> = {
  name: 'command',
  version: '1',
  description:
    'Runs a shell command. Inputs are given as $FACEPIPE_IN_<name> (or {inputs.<name>} in cmd); each output must be written to $FACEPIPE_OUT_<name> (or {outputs.<name>}).',
  paramsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['cmd'],
    properties: {
      cmd: { type: 'string', minLength: 1, description: 'shell command, run by /bin/sh in the workspace root' },
      outputs: {
        type: 'object',
        default: {},
        propertyNames: { pattern: '^[A-Za-z][A-Za-z0-9_-]{0,63}$' },
        additionalProperties: { enum: ['file', 'dir'] },
        description: 'output name -> file or dir',
      },
      env: {
        type: 'object',
        default: {},
        additionalProperties: { type: ['string', 'number', 'boolean'] },
        description: 'extra environment variables (numbers and booleans are written as text)',
      },
      metrics: {
        type: 'string',
        pattern: '^[A-Za-z][A-Za-z0-9_-]*$',
        description:
          'name of a file output holding a JSON object (e.g. {"loss": 0.3}); its numbers and strings become the stage\'s metrics (facepipe exps, report)',
      },
      headline: {
        type: 'array',
        items: { type: 'string', pattern: '^[A-Za-z0-9_.-]+(:(min|max))?$' },
        description:
          'the metrics that sum the stage up, most important first (exps shows them; a sweep picks its best point by the first); name:min when lower is better',
      },
    },
  },
  inputs: () => 'any',
  outputs: (p) =>
    Object.entries(p.outputs ?? {}).map(([name, type]) => ({ name, type, description: `declared output ${name}` })),
  runModule: './run.js',
  headline: (p) =>
    (p.headline ?? []).map((h) => {
      const [metric, goal] = h.split(':');
      return { metric, goal: goal === 'min' ? 'min' : 'max' };
    }),
};

export default kind;
