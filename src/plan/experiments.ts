// The experiments of one run: the base pipeline, or one per sweep point (results/<pipeline>-<hash>/), each with
// its own resolved pipeline and graph. All run in one runner, so stages shared by several points (same cache
// key: split, pretext, ...) run once.
import type { KindCatalog } from '../contracts/stage-kind.js';
import { loadPipeline, type PipelineSpec } from '../load/load.js';
import { readSweepFile, sweepWhere } from '../load/sweep-file.js';
import { yamlLib } from '../load/yaml.js';
import { buildGraph, type StageGraph } from './graph.js';
import { FacepipeError } from '../core/errors.js';
import {
  DEFAULT_MAX_POINTS,
  expandSweep,
  parseSweepArg,
  pointName,
  pointToOverrides,
  readSweepSection,
  type Domain,
  type Point,
  type SweepSpec,
} from './sweep.js';
import type { SweepStanding } from './halving.js';

export interface Experiment {
  /** results/<name>/ holds its outputs. */
  name: string;
  pipeline: PipelineSpec;
  graph: StageGraph;
  /** The params that make this experiment differ from the base (sweeps), for the record. */
  point?: Record<string, unknown>;
  /** A halving sweep: the rung this experiment is at, and how it stands (experiment.json `sweep`). */
  standing?: SweepStanding;
}

/** How the command line asks for a sweep (numbers already checked by the CLI). */
export interface SweepRequest {
  /** --sweep arguments, or false for --no-sweep. */
  sweep?: string[] | false;
  sweepFile?: string;
  samples?: number;
  sweepSeed?: number;
  /** --seeds N: every point N times, the seed params of `seedStages` (default: every stage with one) set to 0..N-1. */
  seeds?: number;
  seedStages?: string[];
  /** --sweep-method: beats the sweep file's (or section's) method. */
  method?: 'grid' | 'random' | 'halving' | 'hyperband';
  /** --eta, --min-epochs, --max-epochs: beat the sweep file's halving settings. */
  eta?: number;
  minEpochs?: number;
  maxEpochs?: number;
}

function value(s: string): unknown {
  try {
    return yamlLib().parse(s, { schema: 'core' });
  } catch {
    return s;
  }
}

/**
 * --sweep arguments, else --sweep-file, else the pipeline's own sweep: section (unless --no-sweep); with --seeds,
 * crossed with the seed replicates (alone, --seeds N is a sweep of N points).
 */
export function sweepSpec(req: SweepRequest, workspace: string, pipeline: PipelineSpec): SweepSpec | undefined {
  const spec = withMethod(pointsSpec(req, workspace, pipeline), req);
  if (req.seeds === undefined) return spec;
  const paths = seedPaths(pipeline, req.seedStages);
  const base = spec ?? { method: 'grid' as const, seed: 0, params: {} };
  const both = paths.filter((p) => p in base.params);
  if (both.length)
    throw new FacepipeError({
      code: 'bad-sweep',
      file: 'command line',
      message: `--seeds ${req.seeds} sets ${both.join(', ')}, which the sweep also sets`,
      hint: `drop ${both.join(', ')} from the sweep, or leave those stages out with --seed-stages`,
    });
  return { ...base, seeds: { n: req.seeds, paths } };
}

/** The method and halving settings the command line gives, over the sweep's own; bad combinations are refused. */
function withMethod(spec: SweepSpec | undefined, req: SweepRequest): SweepSpec | undefined {
  const bad = (message: string, hint: string) =>
    new FacepipeError({ code: 'bad-option', file: 'command line', message, hint });
  const flags = (
    [
      ['--eta', req.eta],
      ['--min-epochs', req.minEpochs],
      ['--max-epochs', req.maxEpochs],
    ] as const
  ).filter(([, v]) => v !== undefined);
  if (!req.method && !flags.length) return spec;
  if (!spec)
    throw bad(
      `${req.method ? `--sweep-method ${req.method}` : flags[0][0]} needs a sweep`,
      "give --sweep stage.param=v1,v2 (or --sweep-file F, or a pipeline's sweep: section)",
    );
  const method = req.method ?? (spec.halving ? (spec.halving.hyperband ? 'hyperband' : 'halving') : spec.method);
  if (method !== 'halving' && method !== 'hyperband') {
    if (flags.length)
      throw bad(`${flags[0][0]} is a setting of successive halving`, 'add --sweep-method halving, or drop it');
    if (method === 'random' && !spec.samples) throw bad('--sweep-method random needs --samples N', 'e.g. --samples 8');
    return { ...spec, method, halving: undefined };
  }
  if (method === 'hyperband' && spec.samples && req.method)
    throw bad('--samples: hyperband draws its own number of points per bracket', 'drop --samples');
  const own = spec.halving;
  const cli = { file: 'command line' };
  const minEpochs = req.minEpochs ?? own?.minEpochs;
  const maxEpochs = req.maxEpochs ?? own?.maxEpochs;
  if (minEpochs === undefined || maxEpochs === undefined)
    throw bad('successive halving needs --min-epochs N and --max-epochs M', 'e.g. --min-epochs 20 --max-epochs 180');
  if (minEpochs > maxEpochs)
    throw bad(
      `--min-epochs ${minEpochs} is above --max-epochs ${maxEpochs}`,
      'the first rung trains min, the last max',
    );
  const where = { ...own?.where };
  for (const [flag, v] of flags) where[flag.slice(2).replace('-', '_')] = { ...cli, keyPath: `${flag} ${v}` };
  const halving = { ...own, eta: req.eta ?? own?.eta ?? 3, minEpochs, maxEpochs, where };
  if (method === 'hyperband')
    return { ...spec, method: 'random', samples: undefined, halving: { ...halving, hyperband: true } };
  return { ...spec, method: spec.samples ? 'random' : 'grid', halving: { ...halving, hyperband: undefined } };
}

/** The seed params --seeds sets: `<stage>.seed` of each named stage (default: every stage whose kind has one). */
function seedPaths(pipeline: PipelineSpec, stages: string[] | undefined): string[] {
  const hasSeed = (s: PipelineSpec['stages'][number]) => {
    const props = (s.kind.paramsSchema as { properties?: Record<string, unknown> }).properties;
    return !!props && Object.prototype.hasOwnProperty.call(props, 'seed');
  };
  const fail = (message: string, hint: string) =>
    new FacepipeError({ code: 'bad-option', file: 'command line', message, hint });
  const seeded = pipeline.stages.filter(hasSeed).map((s) => s.name);
  if (!stages) {
    if (!seeded.length)
      throw fail(`--seeds: no stage of ${pipeline.file} has a seed param`, 'sweep what varies instead');
    return seeded.map((s) => `${s}.seed`);
  }
  for (const name of stages) {
    if (!pipeline.stages.some((s) => s.name === name))
      throw fail(
        `--seed-stages: no stage named '${name}' in ${pipeline.file}`,
        `stages with a seed: ${seeded.join(', ')}`,
      );
    if (!seeded.includes(name))
      throw fail(`--seed-stages: stage '${name}' has no seed param`, `stages with a seed: ${seeded.join(', ')}`);
  }
  return stages.map((s) => `${s}.seed`);
}

function pointsSpec(req: SweepRequest, workspace: string, pipeline: PipelineSpec): SweepSpec | undefined {
  if (req.sweep === false) return undefined;
  if (Array.isArray(req.sweep) && req.sweep.length) {
    const args = req.sweep.map((s) => [s, ...parseSweepArg(s, value)] as const);
    const params: Record<string, Domain> = Object.fromEntries(args.map(([, p, d]) => [p, d]));
    const where = Object.fromEntries(
      args.map(([text, p]) => [p, { file: 'command line', keyPath: `--sweep ${text}` }]),
    );
    const samples = req.samples;
    return { method: samples ? 'random' : 'grid', samples, seed: req.sweepSeed ?? 0, params, where };
  }
  if (req.sweepFile) {
    const src = readSweepFile(workspace, req.sweepFile);
    return readSweepSection(src.raw, src.where);
  }
  if (pipeline.sweep) return readSweepSection(pipeline.sweep, sweepWhere(pipeline.yaml, ['sweep']));
  return undefined;
}

export interface ExperimentBase {
  workspace: string;
  pipelineFile: string;
  configFiles: string[];
  sets: string[];
  pipeline: PipelineSpec;
  graph: StageGraph;
  catalog: KindCatalog;
}

export function buildExperiments(
  base: ExperimentBase,
  name: string,
  spec: SweepSpec | undefined,
  maxPoints = DEFAULT_MAX_POINTS,
): Experiment[] {
  if (!spec) return [{ name, pipeline: base.pipeline, graph: base.graph }];
  const points = expandSweep(spec, maxPoints);
  if (!points.length)
    throw new FacepipeError({ code: 'bad-sweep', message: 'the sweep has no points', hint: 'give each param a value' });
  return points.map((point) => pointExperiment(base, name, point));
}

/**
 * The experiment of one sweep point (named by a hash of the point). `budget` sets one more param with the point's
 * layer (a halving rung's epochs) without making it part of the point or the name.
 */
export function pointExperiment(
  base: ExperimentBase,
  name: string,
  point: Point,
  budget?: { path: string; value: number; label: string },
): Experiment {
  const pointExp = pointName(name, point);
  const values = budget ? { ...point, [budget.path]: budget.value } : point;
  const pipeline = loadPipeline({
    workspace: base.workspace,
    pipelineFile: base.pipelineFile,
    configFiles: base.configFiles,
    sets: base.sets,
    catalog: base.catalog,
    extraLayers: [
      {
        label: `sweep point ${pointExp}`,
        values: pointToOverrides(values),
        origins: Object.entries(values).map(([p, v]) => ({
          path: p.split('.'),
          text: p === budget?.path ? budget.label : `sweep ${p}=${JSON.stringify(v)}`,
        })),
      },
    ],
  });
  return { name: pointExp, pipeline, graph: buildGraph(pipeline), point };
}
