// The executor settings a config file may hold (`executor:`: type, retries, Slurm's partition, account, qos,
// extra flags, log folder, node binary, per-stage resources) and a stage's own `resources:` / `retries:` in the
// pipeline. Validated like every other key (file, line, column); none of it is part of a stage's key.
import { MEM_FORM, TIME_FORM, type ExecutorSettings, type StageResources } from '../contracts/resources.js';
import { didYouMean, type Diagnostic } from '../core/errors.js';
import { deepMerge, isPlainObject } from '../core/objects.js';
import { at } from './files.js';
import type { YamlFile } from './yaml.js';

export const resourcesSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    gpus: { type: 'integer', minimum: 0, description: 'GPUs (Slurm --gres=gpu:N); 0 asks for none' },
    cpus: { type: 'integer', minimum: 1, description: 'CPU cores (Slurm -c)' },
    mem: { type: ['integer', 'string'], minimum: 1, description: "MiB, or e.g. '16G' (Slurm --mem)" },
    time: { type: ['integer', 'string'], minimum: 1, description: "minutes, or e.g. '1:30:00' (Slurm -t)" },
  },
} as const;

export const retriesSchema = { type: 'integer', minimum: 0, maximum: 100 } as const;

const word = { type: 'string', minLength: 1 } as const;

export const executorSectionSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    type: word,
    retries: retriesSchema,
    partition: word,
    account: word,
    qos: word,
    extra: { type: ['string', 'array'], items: { type: 'string' } },
    logs: word,
    node: word,
    resources: { type: 'object', additionalProperties: resourcesSchema },
  },
} as const;

const SETTING_KEYS = ['type', 'retries', 'partition', 'account', 'qos', 'extra', 'logs', 'node'] as const;

/** A config layer's `executor:` section, as read (already schema-checked) with the file it came from. */
export interface ExecutorPart {
  value: Record<string, unknown>;
  yaml: YamlFile;
}

/** mem and time strings in the forms Slurm reads (the schema checks only that they are strings or numbers). */
export function checkResourceForms(
  r: Record<string, unknown>,
  y: YamlFile,
  path: string[],
  diags: Diagnostic[],
): StageResources {
  const forms = { mem: [MEM_FORM, "MiB, or e.g. '512M', '16G'"], time: [TIME_FORM, "minutes, or e.g. '1:30:00'"] };
  for (const [k, [form, hint]] of Object.entries(forms) as Array<[string, [RegExp, string]]>) {
    const v = r[k];
    if (typeof v === 'string' && !form.test(v))
      diags.push({
        code: 'bad-value',
        message: `${[...path, k].join('.')} ${JSON.stringify(v)} is not a Slurm ${k === 'mem' ? 'memory size' : 'time limit'}`,
        hint,
        keyPath: [...path, k].join('.'),
        ...at(y, [...path, k]),
      });
  }
  return r;
}

/**
 * The run's executor settings (later config files win, key by key) and each stage's resources from the
 * configs (`executor.resources.<stage>`), checked against the pipeline's stages.
 */
export function executorSettings(
  parts: ExecutorPart[],
  stageNames: string[],
  diags: Diagnostic[],
): { settings: ExecutorSettings; resources: Record<string, StageResources> } {
  const settings: ExecutorSettings = { where: {} };
  let resources: Record<string, StageResources> = {};
  for (const { value, yaml } of parts) {
    for (const k of SETTING_KEYS) {
      if (value[k] === undefined) continue;
      (settings as unknown as Record<string, unknown>)[k] = value[k];
      settings.where[k] = at(yaml, ['executor', k]);
    }
    if (!isPlainObject(value.resources)) continue;
    for (const [stage, r] of Object.entries(value.resources)) {
      if (!stageNames.includes(stage)) {
        const guess = didYouMean(stage, stageNames);
        diags.push({
          code: 'unknown-stage',
          message: `executor.resources names stage '${stage}', which the pipeline does not have`,
          hint: guess ? `did you mean '${guess}'?` : `stages: ${stageNames.join(', ')}`,
          keyPath: `executor.resources.${stage}`,
          ...at(yaml, ['executor', 'resources', stage], true),
        });
        continue;
      }
      const checked = checkResourceForms(r as Record<string, unknown>, yaml, ['executor', 'resources', stage], diags);
      resources = deepMerge(resources, { [stage]: checked }) as Record<string, StageResources>;
    }
  }
  return { settings, resources };
}
