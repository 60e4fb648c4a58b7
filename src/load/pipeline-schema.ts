// JSON Schema of a pipeline file. Stage params are checked separately against each kind's own schema,
// so adding a kind never edits this file.
import { executorSectionSchema, resourcesSchema, retriesSchema } from './executor-section.js';

// At most 64 characters: names become file names (results/<experiment>/<stage>/<output>, logs, scratch folders),
// and together they must stay far below the 255 bytes a file name may have.
export const NAME_PATTERN = '^[A-Za-z][A-Za-z0-9_-]{0,63}$';

/** Longest experiment name in bytes (a sweep point adds 7; run ids, '.json' and '.log' must still fit in 255). */
export const MAX_EXPERIMENT_NAME_BYTES = 100;

/** Why `name` cannot be an experiment name (results/<name>/, .facepipe/state/last/<name>.json), or undefined. */
export function experimentNameProblem(name: string): string | undefined {
  if (!name || name === '.' || name === '..') return 'it is empty or a relative folder name';
  if (name === 'runs') return "'runs' holds the run records";
  if (/[/\\]/.test(name)) return 'it holds a path separator';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'it holds a control character (a newline, a tab, ...)';
  if (Buffer.byteLength(name) > MAX_EXPERIMENT_NAME_BYTES)
    return `it is ${Buffer.byteLength(name)} bytes long; at most ${MAX_EXPERIMENT_NAME_BYTES}`;
  return undefined;
}

export const pipelineSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['stages'],
  properties: {
    name: {
      type: 'string',
      pattern: NAME_PATTERN,
      description: 'default experiment name; outputs land in results/<name>/',
    },
    description: { type: 'string' },
    config: { type: 'string', description: 'base config file, relative to this pipeline file' },
    backend: { enum: ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] },
    sweep: { type: 'object' },
    stages: {
      type: 'object',
      minProperties: 1,
      propertyNames: { pattern: NAME_PATTERN },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['kind'],
        properties: {
          kind: { type: 'string' },
          description: { type: 'string' },
          inputs: {
            type: 'object',
            propertyNames: { pattern: NAME_PATTERN },
            // '<stage>.<output>' or { path: FILE }: checked in load/load.ts, which can say which of the two was meant.
            additionalProperties: {},
          },
          params: { type: 'object' },
          resources: resourcesSchema,
          retries: retriesSchema,
        },
      },
    },
  },
} as const;

/**
 * A config file maps stage names to param overrides (the names are checked against the pipeline in code), and
 * may hold an `executor:` section (src/load/executor-section.ts).
 */
export const configSchema = {
  type: 'object',
  properties: { executor: executorSectionSchema },
  additionalProperties: { type: 'object' },
} as const;
