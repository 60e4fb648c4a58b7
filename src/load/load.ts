// Load a pipeline file plus its config layers, validate everything, and return fully resolved stages.
// All problems of all files are collected and thrown at once as one FacepipeError.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { didYouMean, FacepipeError, type Diagnostic } from '../core/errors.js';
import { displayPath } from '../core/fsutil.js';
import { deepMerge, isPlainObject } from '../core/objects.js';
import type { KindCatalog, OutputSpec, StageKind } from '../contracts/stage-kind.js';
import { schemaIssues, validator, describe } from './ajv.js';
import { configSchema, NAME_PATTERN, pipelineSchema } from './pipeline-schema.js';
import { locate, parseYamlCached, yamlLib, type YamlCache, type YamlFile } from './yaml.js';
import { findCycles } from './cycles.js';

export type InputRef = { from: 'stage'; stage: string; output: string } | { from: 'path'; path: string };

export interface Where {
  file: string;
  line: number;
  column: number;
  source?: string;
}

export interface StageSpec {
  name: string;
  kind: StageKind;
  params: Record<string, unknown>;
  inputs: Record<string, InputRef>;
  outputs: OutputSpec[];
  where: Where;
  inputWhere: Record<string, Where>;
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
}

/** One source of param overrides: a config file, the pipeline's base config, --set arguments or a sweep point. */
export interface OverrideLayer {
  label: string;
  values: Record<string, Record<string, unknown>>;
  yaml?: YamlFile;
  /** For --set style layers: which argument set which path (dotted, stage first). */
  origins?: Array<{ path: string[]; text: string }>;
}

export interface LoadOptions {
  workspace: string;
  pipelineFile: string;
  configFiles?: string[];
  sets?: string[];
  /** Extra layers applied after --config and before --set (sweep points). */
  extraLayers?: OverrideLayer[];
  catalog: KindCatalog;
  /** Parse cache for YAML files; written only when everything validated. */
  yamlCache?: YamlCache;
}

const NAME_RE = new RegExp(NAME_PATTERN);

function readYaml(
  workspace: string,
  absPath: string,
  diags: Diagnostic[],
  what: string,
  cache?: YamlCache,
): YamlFile | undefined {
  const file = displayPath(workspace, absPath);
  let text: string;
  try {
    text = readFileSync(absPath, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    diags.push({
      code: 'file-missing',
      file,
      message: `cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
      hint: `check the path (resolved to ${absPath})`,
    });
    return undefined;
  }
  const { yaml, diagnostics } = parseYamlCached(file, text, cache);
  diags.push(...diagnostics);
  return yaml;
}

/** Where a key is; computed on first read, since positions need the full YAML parse and only errors use them. */
function at(y: YamlFile, path: Array<string | number>, key = false): Where {
  let p: ReturnType<typeof locate> | undefined;
  const get = () => (p ??= locate(y, path, { key }));
  return {
    file: y.file,
    get line() {
      return get().line;
    },
    get column() {
      return get().column;
    },
    source: y.text,
  };
}

/** Parse `--set stage.a.b=value`; the value is read as YAML (numbers, booleans, null, [lists]). */
export function parseSet(text: string): { path: string[]; value: unknown } | string {
  const m = /^([^=]+)=(.*)$/s.exec(text);
  if (!m) return `expected KEY=VALUE, e.g. triarchy.loss.margin=0.3`;
  const path = m[1].trim().split('.');
  if (path.length < 2 || path.some((s) => !s))
    return `the key must be <stage>.<param>[.<param>...], e.g. triarchy.loss.margin`;
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
    const target = (layer.values[stage] ??= {});
    setPath(target, rest, parsed.value);
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

export function loadPipeline(opts: LoadOptions): PipelineSpec {
  const diags: Diagnostic[] = [];
  const workspace = resolve(opts.workspace);
  const pipelinePath = resolve(workspace, opts.pipelineFile);
  const y = readYaml(workspace, pipelinePath, diags, 'pipeline', opts.yamlCache);
  if (!y) throw new FacepipeError(diags);

  const raw = y.value;
  const v = validator(pipelineSchema);
  if (!v(raw)) {
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
  if (!isPlainObject(raw) || !isPlainObject(raw.stages)) throw new FacepipeError(diags);
  const stagesRaw = raw.stages as Record<string, Record<string, unknown>>;
  const stageNames = Object.keys(stagesRaw);

  // Config layers: the pipeline's own base config, then each --config in order, then sweep points, then --set.
  const layers: OverrideLayer[] = [];
  const configFiles: string[] = [];
  const addConfig = (abs: string, what: string) => {
    const cy = readYaml(workspace, abs, diags, what, opts.yamlCache);
    configFiles.push(displayPath(workspace, abs));
    if (!cy) return;
    const cv = validator(configSchema);
    if (cy.value === null || cy.value === undefined) return; // an empty config is fine
    if (!cv(cy.value)) {
      for (const issue of schemaIssues(cv.errors, (p) => (p.length ? `${p[0]} (a stage's params)` : 'a config file'))) {
        diags.push({
          code: issue.code,
          message: issue.message + (issue.path.length === 0 ? ': a config maps stage names to their params' : ''),
          hint: issue.hint,
          keyPath: issue.path.join('.') || undefined,
          ...at(cy, issue.path, issue.atKey),
        });
      }
      return;
    }
    const values = cy.value as Record<string, Record<string, unknown>>;
    for (const stage of Object.keys(values)) {
      if (!stagesRaw[stage]) {
        const guess = didYouMean(stage, stageNames);
        diags.push({
          code: 'unknown-stage',
          message: `config names stage '${stage}', which the pipeline does not have`,
          hint: guess ? `did you mean '${guess}'?` : `stages: ${stageNames.join(', ')}`,
          keyPath: stage,
          ...at(cy, [stage], true),
        });
      }
    }
    layers.push({ label: displayPath(workspace, abs), values, yaml: cy });
  };
  if (typeof raw.config === 'string')
    addConfig(resolve(dirname(pipelinePath), raw.config), 'base config (config: in the pipeline)');
  for (const c of opts.configFiles ?? []) addConfig(resolve(workspace, c), 'config');
  layers.push(...(opts.extraLayers ?? []));
  const sets = setLayer(opts.sets ?? [], diags);
  for (const o of sets.origins ?? []) {
    if (!stagesRaw[o.path[0]]) {
      const guess = didYouMean(o.path[0], stageNames);
      diags.push({
        code: 'unknown-stage',
        file: 'command line',
        message: `${o.text}: no stage named '${o.path[0]}'`,
        hint: guess ? `did you mean '${guess}.${o.path.slice(1).join('.')}'?` : `stages: ${stageNames.join(', ')}`,
      });
    }
  }
  for (const l of layers) {
    for (const o of l.origins ?? []) {
      if (!stagesRaw[o.path[0]])
        diags.push({
          code: 'unknown-stage',
          file: 'command line',
          message: `${o.text}: no stage named '${o.path[0]}'`,
          hint: `stages: ${stageNames.join(', ')}`,
        });
    }
  }
  layers.push(sets);

  /** Where a param path of a stage was last set: the top-most layer holding it, else the pipeline. */
  const whereParam = (stage: string, path: string[], atKey: boolean): Where & { keyPath: string } => {
    for (let i = layers.length - 1; i >= 0; i--) {
      const l = layers[i];
      const origin = l.origins
        ?.slice()
        .reverse()
        .find(
          (o) =>
            (o.path[0] === stage && isPrefix(o.path.slice(1), path)) ||
            (o.path[0] === stage && isPrefix(path, o.path.slice(1))),
        );
      if (origin)
        return {
          file: 'command line',
          line: 0,
          column: 0,
          keyPath: `${stage}.${path.join('.')} (from ${origin.text})`,
        };
      if (l.yaml && hasValuePath(l.values[stage], path))
        return { ...at(l.yaml, [stage, ...path], atKey), keyPath: `${stage}.${path.join('.')}` };
    }
    const inPipeline = ['stages', stage, 'params', ...path];
    return {
      ...at(y, hasValuePath(stagesRaw[stage]?.params, path) ? inPipeline : inPipeline.slice(0, 3), atKey),
      keyPath: `stages.${stage}.params.${path.join('.')}`,
    };
  };

  const stages: StageSpec[] = [];
  const outputsUnknown = new Set<string>();
  for (const name of stageNames) {
    const s = stagesRaw[name];
    if (!isPlainObject(s) || typeof s.kind !== 'string') continue; // schema already reported it
    const kind = opts.catalog.get(s.kind);
    if (!kind) {
      const guess = didYouMean(s.kind, opts.catalog.names());
      diags.push({
        code: 'unknown-kind',
        message: `stage '${name}' has unknown kind '${s.kind}'`,
        hint: guess ? `did you mean '${guess}'?` : `kinds: ${opts.catalog.names().join(', ')}`,
        keyPath: `stages.${name}.kind`,
        ...at(y, ['stages', name, 'kind']),
      });
      continue;
    }
    let params: Record<string, unknown> = isPlainObject(s.params) ? structuredClone(s.params) : {};
    for (const l of layers) {
      const over = l.values[name];
      if (isPlainObject(over)) params = deepMerge(params, over);
    }
    const pv = validator(kind.paramsSchema);
    const paramsOk = pv(params);
    if (!paramsOk) {
      for (const issue of schemaIssues(pv.errors, (p) => `${name}.${p.join('.')}`.replace(/\.$/, ''))) {
        const w = whereParam(name, issue.path, issue.atKey);
        const viaSet = w.file === 'command line' && issue.path[0] === 'params';
        diags.push({
          code: issue.code,
          message: issue.message,
          hint: viaSet
            ? `--set paths are <stage>.<param>, without "params.": --set ${name}.${issue.path.slice(1).join('.')}=...`
            : issue.hint,
          ...w,
          keyPath: w.keyPath.replace(/\.$/, ''),
        });
      }
    }
    const inputs: Record<string, InputRef> = {};
    const inputWhere: Record<string, Where> = {};
    const rawInputs = isPlainObject(s.inputs) ? s.inputs : {};
    const declared = kind.inputs(params);
    for (const [inName, ref] of Object.entries(rawInputs)) {
      const w = at(y, ['stages', name, 'inputs', inName]);
      inputWhere[inName] = w;
      if (declared !== 'any' && !declared.some((d) => d.name === inName)) {
        const guess = didYouMean(
          inName,
          declared.map((d) => d.name),
        );
        diags.push({
          code: 'unknown-input',
          message: `stage '${name}' (kind ${kind.name}) has no input '${inName}'`,
          hint: guess ? `did you mean '${guess}'?` : `its inputs: ${declared.map((d) => d.name).join(', ') || 'none'}`,
          keyPath: `stages.${name}.inputs.${inName}`,
          ...at(y, ['stages', name, 'inputs', inName], true),
        });
        continue;
      }
      if (typeof ref === 'string') {
        const m = /^([^.]+)\.([^.]+)$/.exec(ref);
        if (!m || !NAME_RE.test(m[1]) || !NAME_RE.test(m[2])) {
          diags.push({
            code: 'bad-reference',
            message: `input '${inName}' of stage '${name}' is ${describe(ref)}; expected <stage>.<output>`,
            hint: `reference another stage's output like 'split.splits', or give a file as { path: ${ref} }`,
            keyPath: `stages.${name}.inputs.${inName}`,
            ...w,
          });
          continue;
        }
        inputs[inName] = { from: 'stage', stage: m[1], output: m[2] };
      } else if (
        !isPlainObject(ref) ||
        typeof ref.path !== 'string' ||
        ref.path === '' ||
        Object.keys(ref).length !== 1
      ) {
        const extra = isPlainObject(ref) ? Object.keys(ref).find((k) => k !== 'path') : undefined;
        diags.push({
          code: 'bad-reference',
          keyPath: `stages.${name}.inputs.${inName}`,
          ...w,
          message:
            extra !== undefined
              ? `input '${inName}' of stage '${name}' has unknown key '${extra}'; a file input is { path: FILE }`
              : `input '${inName}' of stage '${name}' must be '<stage>.<output>' or { path: FILE } with a non-empty path, got ${describe(isPlainObject(ref) ? ref.path : ref)}`,
          hint:
            extra !== undefined
              ? `remove '${extra}'`
              : 'e.g. splits: split.splits, or dataset: { path: data/cmu-faces }',
        });
      } else {
        inputs[inName] = { from: 'path', path: ref.path };
        // Checked here, with the other problems, so a missing file stops the run before anything is written.
        if (!existsSync(isAbsolute(ref.path) ? ref.path : resolve(workspace, ref.path))) {
          diags.push({
            code: 'input-missing',
            message: `input '${inName}' of stage '${name}' names ${ref.path}, which does not exist`,
            hint: 'create it, or fix the path (relative to the workspace root)',
            keyPath: `stages.${name}.inputs.${inName}.path`,
            ...at(y, ['stages', name, 'inputs', inName, 'path']),
          });
        }
      }
    }
    if (declared !== 'any') {
      for (const d of declared) {
        if (!d.optional && !(d.name in rawInputs)) {
          diags.push({
            code: 'missing-input',
            message: `stage '${name}' (kind ${kind.name}) needs input '${d.name}': ${d.description}`,
            hint: `add it under stages.${name}.inputs`,
            keyPath: `stages.${name}.inputs`,
            ...at(y, ['stages', name, rawInputs === s.inputs ? 'inputs' : 'kind']),
          });
        }
      }
    }
    let outputs: OutputSpec[] | undefined;
    if (paramsOk) {
      try {
        outputs = kind.outputs(params);
      } catch (e) {
        diags.push({
          code: 'bad-value',
          message: `stage '${name}': ${(e as Error).message}`,
          keyPath: `stages.${name}.params`,
          ...at(y, ['stages', name]),
        });
      }
    }
    stages.push({
      name,
      kind,
      params,
      inputs,
      outputs: outputs ?? [],
      where: at(y, ['stages', name], true),
      inputWhere,
    });
    if (!outputs) outputsUnknown.add(name);
  }

  // References must name an existing stage and one of its outputs.
  const byName = new Map(stages.map((s) => [s.name, s]));
  for (const s of stages) {
    for (const [inName, ref] of Object.entries(s.inputs)) {
      if (ref.from !== 'stage') continue;
      const w = s.inputWhere[inName];
      if (!stagesRaw[ref.stage]) {
        const guess = didYouMean(ref.stage, stageNames);
        diags.push({
          code: 'missing-reference',
          message: `input '${inName}' of stage '${s.name}' refers to stage '${ref.stage}', which does not exist`,
          hint: guess ? `did you mean '${guess}.${ref.output}'?` : `stages: ${stageNames.join(', ')}`,
          keyPath: `stages.${s.name}.inputs.${inName}`,
          ...w,
        });
        continue;
      }
      const up = byName.get(ref.stage);
      if (up && !outputsUnknown.has(up.name) && !up.outputs.some((o) => o.name === ref.output)) {
        const guess = didYouMean(
          ref.output,
          up.outputs.map((o) => o.name),
        );
        diags.push({
          code: 'missing-reference',
          message: `input '${inName}' of stage '${s.name}' refers to output '${ref.output}' of stage '${ref.stage}', which has no such output`,
          hint: guess
            ? `did you mean '${ref.stage}.${guess}'?`
            : `outputs of ${ref.stage}: ${up.outputs.map((o) => o.name).join(', ')}`,
          keyPath: `stages.${s.name}.inputs.${inName}`,
          ...w,
        });
      }
    }
  }

  // A cycle is reported with the other problems, naming its stages and where the closing reference is.
  const upstreamOf = new Map(
    stages.map((s) => [
      s.name,
      [
        ...new Set(
          Object.values(s.inputs).flatMap((r) => (r.from === 'stage' && byName.has(r.stage) ? [r.stage] : [])),
        ),
      ],
    ]),
  );
  for (const cycle of findCycles(
    stages.map((s) => s.name),
    upstreamOf,
  )) {
    const first = byName.get(cycle[0])!;
    const inName = Object.entries(first.inputs).find(([, r]) => r.from === 'stage' && r.stage === cycle[1])?.[0];
    diags.push({
      code: 'cycle',
      message: `the stages form a cycle: ${cycle.join(' -> ')} (each reads an output of the next)`,
      hint: 'a stage cannot depend, directly or through others, on its own outputs; remove one of these input references',
      keyPath: inName ? `stages.${first.name}.inputs.${inName}` : `stages.${first.name}`,
      ...((inName && first.inputWhere[inName]) || first.where),
    });
  }

  if (diags.length) throw new FacepipeError(diags);
  opts.yamlCache?.commit();
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
  };
}

function isPrefix(a: string[], b: string[]): boolean {
  return a.length <= b.length && a.every((s, i) => s === b[i]);
}
