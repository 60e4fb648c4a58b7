// facepipe run / status with a sweep: the sweep request from the options, the experiments it makes
// (src/plan/experiments.ts), and the list of points printed before the run.
import type { HalvingSetup } from '../../execute/halving.js';
import { buildExperiments, pointExperiment, sweepSpec, type Experiment } from '../../plan/experiments.js';
import { DEFAULT_MAX_POINTS, expandSweep, type Point } from '../../plan/sweep.js';
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
  /** --sweep-method grid|random|halving, and the halving settings. */
  sweepMethod?: string;
  eta?: string;
  minEpochs?: string;
  maxEpochs?: string;
}

/** A number above 1 from a command-line option (eta), or a bad-input error naming it. */
function etaOption(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 1)
    throw new FacepipeError({
      code: 'bad-option',
      file: 'command line',
      message: `--eta ${JSON.stringify(text)}: expected a number above 1 (keep the best 1/eta at each rung)`,
      hint: 'e.g. --eta 3',
    });
  return n;
}

function methodOption(text: string | undefined): 'grid' | 'random' | 'halving' | 'hyperband' | undefined {
  if (text === undefined || ['grid', 'random', 'halving', 'hyperband'].includes(text))
    return text as 'grid' | 'random' | 'halving' | 'hyperband' | undefined;
  throw new FacepipeError({
    code: 'bad-option',
    file: 'command line',
    message: `--sweep-method ${JSON.stringify(text)}: no such method`,
    hint: 'use grid, random (with --samples N), halving or hyperband (with --min-epochs and --max-epochs)',
  });
}

/** What a sweep runs: its experiments, or a halving sweep's setup (its experiments are those of the first rung). */
export interface SweepRun {
  experiments: Experiment[];
  halving?: HalvingSetup;
}

export async function sweepExperiments(o: SweepCliOptions, base: Loaded): Promise<SweepRun> {
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
    method: methodOption(o.sweepMethod),
    eta: etaOption(o.eta),
    minEpochs: o.minEpochs === undefined ? undefined : positiveInt('--min-epochs', o.minEpochs, 1),
    maxEpochs: o.maxEpochs === undefined ? undefined : positiveInt('--max-epochs', o.maxEpochs, 1),
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
  const name = o.experiment ?? base.pipeline.name;
  if (!spec?.halving) return { experiments: buildExperiments(experimentBase, name, spec, maxPoints) };
  const halving = spec.halving;
  // Loaded only for a halving sweep: every module loaded costs each start of the CLI.
  const { candidateKey, planBrackets } = await import('../../plan/halving.js');
  const opts = { metricOption: o.metric, sets: o.set };
  // Checks the settings against the pipeline; Hyperband's bracket sizes do not depend on the points.
  const shape = planBrackets({ ...spec, halving }, base.pipeline, 1, opts);
  const want = halving.hyperband ? shape.reduce((n, p) => n + p.rungs[0].candidates, 0) : undefined;
  // Hyperband draws the candidates of all its brackets at once, then deals them out in order.
  const points = expandSweep(want ? { ...spec, samples: want } : spec, maxPoints);
  const groups = new Map<string, Point[]>();
  for (const pt of points) {
    const k = candidateKey(pt, spec.seeds?.paths);
    groups.set(k, [...(groups.get(k) ?? []), pt]);
  }
  const candidates = [...groups.values()];
  if (want && candidates.length < want)
    throw new FacepipeError({
      code: 'bad-sweep',
      file: 'command line',
      message: `hyperband needs ${want} distinct points for its ${shape.length} brackets; the sweep's values give ${candidates.length}`,
      hint: 'sweep ranges (uniform, loguniform, range) or more values, or raise min_epochs for fewer brackets',
    });
  const plans = want ? shape : planBrackets({ ...spec, halving }, base.pipeline, candidates.length, opts);
  const path = plans[0].path;
  let next = 0;
  const setup: HalvingSetup = {
    brackets: plans.map((plan) => ({
      plan,
      candidates: candidates.slice(next, (next += want ? plan.rungs[0].candidates : candidates.length)),
    })),
    experiment: (pt, epochs) =>
      pointExperiment(experimentBase, name, pt, { path, value: epochs, label: `halving rung: ${path}=${epochs}` }),
  };
  const experiments = setup.brackets.flatMap((b) =>
    b.candidates.flat().map((pt) => setup.experiment(pt, b.plan.rungs[0].epochs)),
  );
  return { experiments, halving: setup };
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
    const run = await sweepExperiments(o, base);
    const exps = run.experiments;
    if (exps.length > 1 || exps[0].point) process.stdout.write(describePoints(exps));
    if (run.halving)
      process.stdout.write(
        (await import('../../plan/halving.js')).describePlan(
          run.halving.brackets.map((b) => b.plan),
          exps.length,
        ) + '\n',
      );
    return run;
  });
}
