// facepipe run / status with a sweep: the sweep request from the options, the experiments it makes
// (src/plan/experiments.ts), and the list of points printed before the run.
import { buildExperiments, sweepSpec, type Experiment } from '../../plan/experiments.js';
import { DEFAULT_MAX_POINTS } from '../../plan/sweep.js';
import { FacepipeError } from '../../core/errors.js';
import { loadKinds } from '../../stages/registry.js';
import type { Loaded } from '../context.js';
import { positiveInt, wholeNumber } from '../session.js';
import { runCommand, type RunCliOptions } from './run.js';

export interface SweepCliOptions extends RunCliOptions {
  /** --sweep arguments, or false for --no-sweep. */
  sweep?: string[] | false;
  sweepFile?: string;
  samples?: string;
  sweepSeed?: string;
  maxPoints?: string;
  /** --seeds N: N seed replicates of every point. */
  seeds?: string;
  /** --seed-stages a,b (repeatable): whose seed --seeds sets. */
  seedStages?: string[];
}

export async function sweepExperiments(o: SweepCliOptions, base: Loaded): Promise<Experiment[]> {
  const request = {
    sweep: o.sweep,
    sweepFile: o.sweepFile,
    samples: o.samples === undefined ? undefined : positiveInt('--samples', o.samples, 1),
    sweepSeed: wholeNumber('--sweep-seed', o.sweepSeed, 0),
    seeds: o.seeds === undefined ? undefined : positiveInt('--seeds', o.seeds, 1),
    seedStages: o.seedStages
      ?.flatMap((s) => s.split(','))
      .map((s) => s.trim())
      .filter(Boolean),
  };
  if (request.seedStages && request.seeds === undefined)
    throw new FacepipeError({
      code: 'bad-option',
      file: 'command line',
      message: '--seed-stages needs --seeds N',
      hint: 'e.g. --seeds 3 --seed-stages pretext,triarchy',
    });
  const maxPoints = positiveInt('--max-points', o.maxPoints, DEFAULT_MAX_POINTS);
  const spec = sweepSpec(request, base.ws.root, base.pipeline);
  const experimentBase = {
    workspace: base.ws.root,
    pipelineFile: base.pipelineFile,
    configFiles: o.config ?? [],
    sets: o.set ?? [],
    pipeline: base.pipeline,
    graph: base.graph,
    catalog: await loadKinds(),
  };
  return buildExperiments(experimentBase, o.experiment ?? base.pipeline.name, spec, maxPoints);
}

function describePoints(exps: Experiment[]): string {
  const lines = exps.map(
    (e) =>
      `  ${e.name}  ${Object.entries(e.point ?? {})
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(' ')}`,
  );
  return `sweep: ${exps.length} experiments\n${lines.join('\n')}\n`;
}

export async function sweepRunCommand(pipelineArg: string | undefined, o: SweepCliOptions): Promise<number> {
  return runCommand(pipelineArg, o, async (base) => {
    const exps = await sweepExperiments(o, base);
    if (exps.length > 1 || exps[0].point) process.stdout.write(describePoints(exps));
    return exps;
  });
}
