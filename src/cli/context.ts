// Shared by the commands: find the workspace and pipeline, load and validate it, build its graph.
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FacepipeError } from '../core/errors.js';
import { buildGraph, type StageGraph } from '../plan/graph.js';
import { loadPipeline, type OverrideLayer, type PipelineSpec } from '../load/load.js';
import { loadKinds } from '../stages/registry.js';
import { Workspace } from '../execute/workspace.js';
import { YamlCache } from '../load/yaml.js';

export interface CommonOptions {
  config?: string[];
  set?: string[];
  workspace?: string;
  experiment?: string;
}

export const DEFAULT_PIPELINE = 'pipelines/face-verification.yaml';

export function findPipeline(root: string, given?: string): string {
  if (given) return given;
  if (existsSync(join(root, DEFAULT_PIPELINE))) return DEFAULT_PIPELINE;
  const dir = join(root, 'pipelines');
  const found = existsSync(dir) ? readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)) : [];
  if (found.length === 1) return `pipelines/${found[0]}`;
  throw new FacepipeError({
    code: 'no-pipeline',
    message: found.length
      ? `several pipelines in pipelines/ (${found.join(', ')}); name one`
      : `no pipeline given and none found at ${DEFAULT_PIPELINE}`,
    hint: 'facepipe run pipelines/<name>.yaml',
  });
}

export interface Loaded {
  ws: Workspace;
  pipeline: PipelineSpec;
  graph: StageGraph;
  pipelineFile: string;
  /** Write the YAML parse cache: only once the whole command line validated, so bad input writes nothing. */
  commitParseCache(): void;
}

/** Load and validate; the parse cache is written at once unless `deferCommit` (the caller commits it). */
export async function loadAll(
  pipelineArg: string | undefined,
  o: CommonOptions,
  extraLayers?: OverrideLayer[],
  deferCommit = false,
): Promise<Loaded> {
  const root = resolve(o.workspace ?? process.cwd());
  const pipelineFile = findPipeline(root, pipelineArg);
  const catalog = await loadKinds();
  const ws = new Workspace(root);
  ws.assertConfined(); // before the parse cache or anything else is written
  const yamlCache = new YamlCache(ws.yamlCacheDir, (f, why, then) => ws.stateWarning(f, why, then));
  const pipeline = loadPipeline({
    workspace: root,
    pipelineFile,
    configFiles: o.config ?? [],
    sets: o.set ?? [],
    catalog,
    extraLayers,
    yamlCache,
    experiment: o.experiment,
  });
  const graph = buildGraph(pipeline);
  if (!deferCommit) yamlCache.commit();
  return { ws, pipeline, graph, pipelineFile, commitParseCache: () => yamlCache.commit() };
}
