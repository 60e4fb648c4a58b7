// JSON Schema of a pipeline file. Stage params are checked separately against each kind's own schema,
// so adding a kind never edits this file.
import { executorSectionSchema, resourcesSchema, retriesSchema } from './executor-section.js';

export const NAME_PATTERN = '^[A-Za-z][A-Za-z0-9_-]*$';

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
