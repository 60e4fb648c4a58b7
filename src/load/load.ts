// Load a pipeline file plus its config layers, validate everything, and return fully resolved stages.
// All problems of all files are collected and thrown at once as one FacepipeError.
import { resolve } from 'node:path';
import type { ExecutorSettings, StageResources } from '../contracts/resources.js';
import type { KindCatalog, OutputSpec, StageKind } from '../contracts/stage-kind.js';
import { didYouMean, FacepipeError, type Diagnostic } from '../core/errors.js';
import { displayPath } from '../core/fsutil.js';
import { isPlainObject, nonFinitePaths } from '../core/objects.js';
import { schemaIssues, validator } from './ajv.js';
import { checkResourceForms, executorSettings } from './executor-section.js';
import { at, readYaml, type Where } from './files.js';
import { mergeLayers, readLayers, whereParam, type OverrideLayer } from './layers.js';
import { experimentNameProblem, pipelineSchema } from './pipeline-schema.js';
import { checkReferences } from './references.js';
import { resolveInputs, type InputRef } from './stage-inputs.js';
import type { YamlCache, YamlFile } from './yaml.js';

export type { InputRef, OverrideLayer, Where };
export { parseSet, setLayer } from './layers.js';

export interface StageSpec {
  name: string;
  kind: StageKind;
  params: Record<string, unknown>;
  inputs: Record<string, InputRef>;
  outputs: OutputSpec[];
  where: Where;
  inputWhere: Record<string, Where>;
  /** The pipeline's `resources:` for this stage, overridden by the configs' `executor.resources.<stage>`. */
  resources?: StageResources;
  /** The stage's own `retries:` (else the config's `executor.retries`). */
  retries?: number;
}

export interface PipelineSpec {
  /** Pipeline file as given (relative to the workspace when inside it). */
  file: string;
  name: string;
  workspace: string;
  backend: string;
  stages: StageSpec[];
  /** The raw `sweep:` section, interpreted by the sweep module. */
  sweep?: Record<string, unknown>;
  /** The parsed pipeline file, for positions in diagnostics about it (e.g. its sweep section). */
  yaml: YamlFile;
  configFiles: string[];
  sets: string[];
  /** The configs' `executor:` sections, merged. */
  executor: ExecutorSettings;
}

export interface LoadOptions {
  workspace: string;
  pipelineFile: string;
  configFiles?: string[];
  sets?: string[];
  /** Extra layers applied after --config and before --set (sweep points). */
  extraLayers?: OverrideLayer[];
  catalog: KindCatalog;
  /** Parse cache for YAML files; the caller commits it once everything (sweeps, options too) validated. */
  yamlCache?: YamlCache;
  /** --experiment: the name outputs go under, checked with the rest (default: the pipeline's name). */
  experiment?: string;
}

interface StageContextForLoad {
  workspace: string;
  y: YamlFile;
  layers: OverrideLayer[];
  catalog: KindCatalog;
  diags: Diagnostic[];
}

function kindOf(c: StageContextForLoad, name: string, kindName: string): StageKind | undefined {
  const kind = c.catalog.get(kindName);
  if (kind) return kind;
  const guess = didYouMean(kindName, c.catalog.names());
  c.diags.push({
    code: 'unknown-kind',
    message: `stage '${name}' has unknown kind '${kindName}'`,
    hint: guess ? `did you mean '${guess}'?` : `kinds: ${c.catalog.names().join(', ')}`,
    keyPath: `stages.${name}.kind`,
    ...at(c.y, ['stages', name, 'kind']),
  });
  return undefined;
}

/** A stage's params: the layers merged (mergeLayers: base config, its own, the rest), then validated (defaults filled) by its kind. */
function resolveParams(
  c: StageContextForLoad,
  name: string,
  kind: StageKind,
  own: unknown,
): { params: Record<string, unknown>; ok: boolean } {
  const params = mergeLayers(c.layers, name, own);
  // .inf and .nan are YAML numbers, but no param means them, and a key cannot hash them.
  const infinite = nonFinitePaths(params);
  for (const path of infinite) {
    const w = whereParam(c.layers, c.y, own, name, path.map(String), false);
    c.diags.push({
      code: 'bad-value',
      message: `${name}.${path.join('.')} is ${String(valueAt(params, path))}; params must be finite numbers`,
      hint: 'use a finite number (YAML .inf, -.inf and .nan are not params)',
      ...w,
    });
  }
  if (infinite.length) return { params, ok: false };
  const pv = validator(kind.paramsSchema);
  const ok = pv(params);
  if (ok) return { params, ok };
  for (const issue of schemaIssues(pv.errors, (p) => `${name}.${p.join('.')}`.replace(/\.$/, ''))) {
    const w = whereParam(c.layers, c.y, own, name, issue.path, issue.atKey);
    const viaSet = w.file === 'command line' && issue.path[0] === 'params';
    c.diags.push({
      code: issue.code,
      message: issue.message,
      hint: viaSet
        ? `--set paths are <stage>.<param>, without "params.": --set ${name}.${issue.path.slice(1).join('.')}=...`
        : issue.hint,
      ...w,
      keyPath: w.keyPath.replace(/\.$/, ''),
    });
  }
  return { params, ok };
}

/** A stage resolved, and whether its outputs are known (they are not when its params are invalid). */
function resolveStage(
  c: StageContextForLoad,
  name: string,
  s: Record<string, unknown>,
): { spec: StageSpec; outputsKnown: boolean } | undefined {
  if (typeof s.kind !== 'string') return undefined; // the schema already reported it
  const kind = kindOf(c, name, s.kind);
  if (!kind) return undefined;
  const { params, ok } = resolveParams(c, name, kind, s.params);
  const { inputs, inputWhere } = resolveInputs(
    { workspace: c.workspace, y: c.y, stage: name, kind: kind.name, declared: kind.inputs(params), diags: c.diags },
    isPlainObject(s.inputs) ? s.inputs : {},
    isPlainObject(s.inputs),
  );
  let outputs: OutputSpec[] | undefined;
  if (ok) {
    try {
      outputs = kind.outputs(params);
    } catch (e) {
      c.diags.push({
        code: 'bad-value',
        message: `stage '${name}': ${(e as Error).message}`,
        keyPath: `stages.${name}.params`,
        ...at(c.y, ['stages', name]),
      });
    }
  }
  const where = at(c.y, ['stages', name], true);
  const resources = isPlainObject(s.resources)
    ? checkResourceForms(s.resources, c.y, ['stages', name, 'resources'], c.diags)
    : {};
  const retries = typeof s.retries === 'number' ? s.retries : undefined;
  return {
    spec: { name, kind, params, inputs, outputs: outputs ?? [], where, inputWhere, resources, retries },
    outputsKnown: !!outputs,
  };
}

function valueAt(v: unknown, path: Array<string | number>): unknown {
  return path.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], v);
}

/**
 * The experiment name this load will write under, checked: --experiment, else the file name when there is no
 * name: key (which the schema checks itself).
 */
function checkExperimentName(
  y: YamlFile,
  raw: Record<string, unknown>,
  given: string | undefined,
  diags: Diagnostic[],
) {
  if (given === undefined && raw.name !== undefined) return;
  const name = given ?? y.file.replace(/^.*\//, '').replace(/\.ya?ml$/, '');
  const problem = experimentNameProblem(name);
  if (!problem) return;
  diags.push({
    code: 'bad-name',
    file: given !== undefined ? 'command line' : y.file,
    message: `experiment name ${JSON.stringify(name.length > 80 ? name.slice(0, 80) + '…' : name)} is not a plain folder name: ${problem}`,
    hint:
      given !== undefined
        ? '--experiment takes a short name of letters, digits, "_", "-" and "."'
        : 'name the experiment with a name: key in the pipeline or --experiment NAME',
  });
}

function checkPipelineSchema(y: YamlFile, diags: Diagnostic[]): void {
  const v = validator(pipelineSchema);
  if (v(y.value)) return;
  for (const issue of schemaIssues(v.errors, (p) => p.join('.') || 'the pipeline')) {
    diags.push({
      code: issue.code,
      message: issue.message,
      hint: issue.hint,
      keyPath: issue.path.join('.') || undefined,
      ...at(y, issue.path, issue.atKey),
    });
  }
}

export function loadPipeline(opts: LoadOptions): PipelineSpec {
  const diags: Diagnostic[] = [];
  const workspace = resolve(opts.workspace);
  const pipelinePath = resolve(workspace, opts.pipelineFile);
  const y = readYaml(workspace, pipelinePath, diags, 'pipeline', opts.yamlCache);
  if (!y) throw new FacepipeError(diags);
  checkPipelineSchema(y, diags);
  const raw = y.value;
  if (!isPlainObject(raw) || !isPlainObject(raw.stages)) throw new FacepipeError(diags);
  const stagesRaw = raw.stages;
  const stageNames = Object.keys(stagesRaw);
  const { layers, configFiles } = readLayers(
    {
      workspace,
      pipelinePath,
      baseConfig: typeof raw.config === 'string' ? raw.config : undefined,
      configFiles: opts.configFiles ?? [],
      extraLayers: opts.extraLayers ?? [],
      sets: opts.sets ?? [],
      stageNames,
      cache: opts.yamlCache,
    },
    diags,
  );
  const c: StageContextForLoad = { workspace, y, layers, catalog: opts.catalog, diags };
  const stages: StageSpec[] = [];
  const outputsUnknown = new Set<string>();
  for (const name of stageNames) {
    const s = stagesRaw[name];
    const r = isPlainObject(s) ? resolveStage(c, name, s) : undefined;
    if (!r) continue;
    if (!r.outputsKnown) outputsUnknown.add(name);
    stages.push(r.spec);
  }
  const parts = layers.flatMap((l) => (l.executor && l.yaml ? [{ value: l.executor, yaml: l.yaml }] : []));
  const executor = executorSettings(parts, stageNames, diags);
  for (const st of stages) st.resources = { ...st.resources, ...executor.resources[st.name] };
  checkReferences(stages, stageNames, outputsUnknown, diags);
  checkExperimentName(y, raw, opts.experiment, diags);
  if (diags.length) throw new FacepipeError(diags);
  return {
    file: displayPath(workspace, pipelinePath),
    name: typeof raw.name === 'string' ? raw.name : pipelinePath.replace(/^.*\//, '').replace(/\.ya?ml$/, ''),
    workspace,
    backend: typeof raw.backend === 'string' ? raw.backend : 'auto',
    stages,
    sweep: isPlainObject(raw.sweep) ? raw.sweep : undefined,
    yaml: y,
    configFiles,
    sets: opts.sets ?? [],
    executor: executor.settings,
  };
}
