// Param overrides in layers, later wins: the pipeline's base config (`config:`), the pipeline's own stage params,
// each --config, sweep points, then --set. A file's own values beat the defaults it names (Hydra's `_self_` last),
// so an explicit value in the pipeline is never silently overridden by its base config. Also: where a param was
// last set, for diagnostics that point at the right file.
import { dirname, resolve } from 'node:path';
import { didYouMean, type Diagnostic } from '../core/errors.js';
import { displayPath } from '../core/fsutil.js';
import { deepMerge, defineOwn, isPlainObject, PROTOTYPE_KEYS } from '../core/objects.js';
import { schemaIssues, validator } from './ajv.js';
import { at, readYaml, type Where } from './files.js';
import { configSchema } from './pipeline-schema.js';
import { yamlLib, type YamlCache, type YamlFile } from './yaml.js';

/** One source of param overrides: a config file, the pipeline's base config, --set arguments or a sweep point. */
export interface OverrideLayer {
  label: string;
  values: Record<string, Record<string, unknown>>;
  yaml?: YamlFile;
  /** For --set style layers: which argument set which path (dotted, stage first). */
  origins?: Array<{ path: string[]; text: string }>;
  /** A config file's `executor:` section (not a stage's params). */
  executor?: Record<string, unknown>;
  /** The pipeline's base config: applies beneath the pipeline's own params (every other layer applies above). */
  base?: true;
}

/** Parse `--set stage.a.b=value`; the value is read as YAML (numbers, booleans, null, [lists]). */
export function parseSet(text: string): { path: string[]; value: unknown } | string {
  const m = /^([^=]+)=(.*)$/s.exec(text);
  if (!m) return `expected KEY=VALUE, e.g. triarchy.loss.margin=0.3`;
  const path = m[1].trim().split('.');
  if (path.length < 2 || path.some((s) => !s))
    return `the key must be <stage>.<param>[.<param>...], e.g. triarchy.loss.margin`;
  const proto = path.find((s) => PROTOTYPE_KEYS.has(s));
  if (proto !== undefined) return `'${proto}' is not allowed in a key (it names an object's prototype)`;
  let value: unknown = m[2];
  try {
    value = yamlLib().parse(m[2], { schema: 'core' });
  } catch {
    /* keep the string */
  }
  return { path, value };
}

export function setLayer(sets: string[], diags: Diagnostic[], label = '--set'): OverrideLayer {
  const layer: OverrideLayer = { label, values: {}, origins: [] };
  for (const text of sets) {
    const parsed = parseSet(text);
    if (typeof parsed === 'string') {
      diags.push({ code: 'bad-set', file: 'command line', message: `bad ${label} ${JSON.stringify(text)}: ${parsed}` });
      continue;
    }
    const [stage, ...rest] = parsed.path;
    if (!Object.prototype.hasOwnProperty.call(layer.values, stage)) defineOwn(layer.values, stage, {});
    setPath(layer.values[stage], rest, parsed.value);
    layer.origins!.push({ path: parsed.path, text: `${label} ${text}` });
  }
  return layer;
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let o = obj;
  for (const seg of path.slice(0, -1)) {
    if (typeof o[seg] !== 'object' || o[seg] === null || Array.isArray(o[seg])) o[seg] = {};
    o = o[seg] as Record<string, unknown>;
  }
  o[path[path.length - 1]] = value;
}

function hasValuePath(obj: unknown, path: string[]): boolean {
  let o = obj;
  for (const seg of path) {
    if (!isPlainObject(o) || !(seg in o)) return false;
    o = o[seg];
  }
  return true;
}

function configLayer(
  workspace: string,
  abs: string,
  what: string,
  stageNames: string[],
  diags: Diagnostic[],
  cache?: YamlCache,
): OverrideLayer | undefined {
  const cy = readYaml(workspace, abs, diags, what, cache);
  if (!cy) return undefined;
  if (cy.value === null || cy.value === undefined) return undefined; // an empty config is fine
  const cv = validator(configSchema);
  if (!cv(cy.value)) {
    const label = (p: string[]) =>
      p[0] === 'executor' ? p.join('.') : p.length ? `${p[0]} (a stage's params)` : 'a config file';
    for (const issue of schemaIssues(cv.errors, label)) {
      diags.push({
        code: issue.code,
        message: issue.message + (issue.path.length === 0 ? ': a config maps stage names to their params' : ''),
        hint: issue.hint,
        keyPath: issue.path.join('.') || undefined,
        ...at(cy, issue.path, issue.atKey),
      });
    }
    return undefined;
  }
  const { executor, ...values } = cy.value as Record<string, Record<string, unknown>>;
  for (const stage of Object.keys(values)) {
    if (stageNames.includes(stage)) continue;
    const guess = didYouMean(stage, stageNames);
    diags.push({
      code: 'unknown-stage',
      message: `config names stage '${stage}', which the pipeline does not have`,
      hint: guess ? `did you mean '${guess}'?` : `stages: ${stageNames.join(', ')}`,
      keyPath: stage,
      ...at(cy, [stage], true),
    });
  }
  return { label: displayPath(workspace, abs), values, yaml: cy, executor };
}

export interface LayerSources {
  workspace: string;
  pipelinePath: string;
  /** The pipeline's `config:` (relative to the pipeline file). */
  baseConfig?: string;
  configFiles: string[];
  extraLayers: OverrideLayer[];
  sets: string[];
  stageNames: string[];
  cache?: YamlCache;
}

/** Every override layer in the order they apply, and the config files read (for the run record). */
export function readLayers(o: LayerSources, diags: Diagnostic[]): { layers: OverrideLayer[]; configFiles: string[] } {
  const layers: OverrideLayer[] = [];
  const configFiles: string[] = [];
  const add = (abs: string, what: string, base?: true) => {
    configFiles.push(displayPath(o.workspace, abs));
    const layer = configLayer(o.workspace, abs, what, o.stageNames, diags, o.cache);
    if (layer) layers.push(base ? { ...layer, base } : layer);
  };
  if (o.baseConfig !== undefined)
    add(resolve(dirname(o.pipelinePath), o.baseConfig), 'base config (config: in the pipeline)', true);
  for (const c of o.configFiles) add(resolve(o.workspace, c), 'config');
  layers.push(...o.extraLayers);
  const sets = setLayer(o.sets, diags);
  for (const origin of sets.origins ?? []) {
    if (o.stageNames.includes(origin.path[0])) continue;
    const guess = didYouMean(origin.path[0], o.stageNames);
    diags.push({
      code: 'unknown-stage',
      file: 'command line',
      message: `${origin.text}: no stage named '${origin.path[0]}'`,
      hint: guess ? `did you mean '${guess}.${origin.path.slice(1).join('.')}'?` : `stages: ${o.stageNames.join(', ')}`,
    });
  }
  for (const l of layers) {
    for (const origin of l.origins ?? []) {
      if (!o.stageNames.includes(origin.path[0]))
        diags.push({
          code: 'unknown-stage',
          file: 'command line',
          message: `${origin.text}: no stage named '${origin.path[0]}'`,
          hint: `stages: ${o.stageNames.join(', ')}`,
        });
    }
  }
  layers.push(sets);
  return { layers, configFiles };
}

function isPrefix(a: string[], b: string[]): boolean {
  return a.length <= b.length && a.every((s, i) => s === b[i]);
}

/** A stage's params: the base config, then its own params, then every other layer in order (later wins). */
export function mergeLayers(layers: OverrideLayer[], stage: string, own: unknown): Record<string, unknown> {
  let params: Record<string, unknown> = {};
  const merge = (v: unknown) => {
    if (isPlainObject(v)) params = deepMerge(params, v);
  };
  // Own keys only: a stage named like an Object.prototype member must not read the prototype.
  const of = (l: OverrideLayer) =>
    Object.prototype.hasOwnProperty.call(l.values, stage) ? l.values[stage] : undefined;
  for (const l of layers) if (l.base) merge(of(l));
  merge(own);
  for (const l of layers) if (!l.base) merge(of(l));
  return params;
}

/**
 * Where a param path of a stage was last set: the top-most layer above the pipeline holding it, else the
 * pipeline file when it holds it, else the base config, else the pipeline's stage.
 */
export function whereParam(
  layers: OverrideLayer[],
  pipeline: YamlFile,
  pipelineParams: unknown,
  stage: string,
  path: string[],
  atKey: boolean,
): Where & { keyPath: string } {
  const inPipeline = ['stages', stage, 'params', ...path];
  const ordered = [...layers.filter((l) => l.base), ...layers.filter((l) => !l.base)];
  for (let i = ordered.length - 1; i >= 0; i--) {
    const l = ordered[i];
    if (l.base && hasValuePath(pipelineParams, path))
      return { ...at(pipeline, inPipeline, atKey), keyPath: `stages.${stage}.params.${path.join('.')}` };
    const origin = l.origins
      ?.slice()
      .reverse()
      .find((o) => o.path[0] === stage && (isPrefix(o.path.slice(1), path) || isPrefix(path, o.path.slice(1))));
    if (origin)
      return { file: 'command line', line: 0, column: 0, keyPath: `${stage}.${path.join('.')} (from ${origin.text})` };
    if (l.yaml && hasValuePath(l.values[stage], path))
      return { ...at(l.yaml, [stage, ...path], atKey), keyPath: `${stage}.${path.join('.')}` };
  }
  return {
    ...at(pipeline, hasValuePath(pipelineParams, path) ? inPipeline : inPipeline.slice(0, 3), atKey),
    keyPath: `stages.${stage}.params.${path.join('.')}`,
  };
}
