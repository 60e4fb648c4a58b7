import { join } from 'node:path';
import { FacepipeError, formatError } from '../../core/errors.js';
import { resolveForWrite } from '../../core/fsutil.js';
import type { Experiment, RunResult, StageResult } from '../../execute/runner.js';
import { readdirSync } from 'node:fs';
import type { HalvingOutcome, HalvingSetup, RungPlan } from '../../execute/halving.js';
import type { planExperiments } from '../../execute/status.js';
import { experimentNameProblem } from '../../load/pipeline-schema.js';
import { checkSelection, type Selection } from '../../plan/decide.js';
import { loadAll, type CommonOptions } from '../context.js';
import { jsonRenderer } from '../renderers/json.js';
import { executorName, positiveInt, positiveMiB, runSession, type ProgressMode } from '../session.js';
import { resolveBackend } from './backend-option.js';

export interface RunCliOptions extends CommonOptions {
  dryRun?: boolean;
  force?: string[];
  /** -F: --force all. */
  forceAll?: boolean;
  forceDownstream?: string[];
  /** Targets: run only these stages and what they need (repeatable, comma-separated). */
  until?: string[];
  /** The metric that picks a sweep's best point, NAME[:max|:min]. */
  metric?: string;
  jobs?: string;
  backend?: string;
  progress?: ProgressMode;
  verbose?: boolean;
  wait?: boolean;
  maxMemory?: string;
  executor?: string;
}

export function printPlan(plans: Awaited<ReturnType<typeof planExperiments>>): void {
  const w = Math.max(...plans.map((p) => p.id.length));
  for (const p of plans) {
    const action = p.action === 'cached' ? 'cached   ' : p.action === 'run' ? 'will run ' : 'may run  ';
    process.stdout.write(`${p.id.padEnd(w)}  ${action} ${p.action === 'cached' ? '' : p.reason}\n`);
  }
}

export async function runCommand(
  pipelineArg: string | undefined,
  o: RunCliOptions,
  experimentsOverride?: (
    base: Awaited<ReturnType<typeof loadAll>>,
  ) => Promise<{ experiments: Experiment[]; halving?: HalvingSetup }>,
): Promise<number> {
  const loaded = await loadAll(pipelineArg, o, undefined, true);
  const { experiments, halving } = experimentsOverride
    ? await experimentsOverride(loaded)
    : { experiments: [{ name: o.experiment ?? loaded.pipeline.name, pipeline: loaded.pipeline, graph: loaded.graph }] };
  // results/<experiment> must be one plain folder inside the workspace: no '..', no separators, no symlink out.
  for (const e of experiments) {
    const problem = experimentNameProblem(e.name);
    if (problem)
      throw new FacepipeError({
        code: 'bad-name',
        file: 'command line',
        message: `experiment name ${JSON.stringify(e.name)} is not a plain folder name: ${problem}`,
        hint: 'use letters, digits, "_", "-" and "."; no "/" and no ".."',
      });
    resolveForWrite(loaded.ws.root, join('results', e.name), 'results folder');
  }
  resolveForWrite(loaded.ws.root, join('results', 'runs'), 'run records folder');
  const selection = selectionOf(o);
  checkSelection(loaded.graph, selection);
  const executor = executorName(o.executor, loaded);
  const jobs = o.jobs === undefined ? undefined : positiveInt('--jobs', o.jobs, 1);
  const memoryBudgetMB = positiveMiB('--max-memory', o.maxMemory);
  const backend = o.dryRun ? '' : resolveBackend(o.backend, loaded.pipeline.backend);
  loaded.commitParseCache(); // everything validated: the first write of this command
  if (o.dryRun) {
    const warn = (m: string) => loaded.ws.warn(m);
    // Halving and the sweep headline are imported only when used: every module loaded costs each start.
    if (halving)
      printRungs(
        await (
          await import('../../execute/halving.js')
        ).planHalvingRun({ workspace: loaded.ws, selection, setup: halving, warn }),
      );
    else
      printPlan(
        await (await import('../../execute/status.js')).planExperiments(loaded.ws, experiments, selection, warn),
      );
    await printJobs(loaded.ws.root);
    return 0;
  }
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write(
        '\nstopping: finishing nothing new, keeping completed stages (Ctrl-C again to quit at once)\n',
      );
      controller.abort();
    } else process.exit(130);
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    const result = await runSession({
      loaded,
      experiments,
      command: `facepipe run ${loaded.pipelineFile}`,
      progress: o.progress ?? 'auto',
      verbose: !!o.verbose,
      wait: o.wait !== false,
      jobs,
      force: [],
      selection,
      backend,
      executor,
      memoryBudgetMB,
      signal: controller.signal,
      halving,
    });
    if (result.halving)
      await printEnd(
        loaded.ws.root,
        result.halving.finalists,
        result,
        { ...o, metric: `${halving!.brackets[0].plan.metric}:${halving!.brackets[0].plan.goal}` },
        result.halving.finalStages,
      );
    else await printEnd(loaded.ws.root, experiments, result, o);
    for (const s of result.stages.filter((x) => x.state === 'failed'))
      process.stderr.write(`stage ${s.id} failed: ${s.error}\n`);
    if (result.error) {
      process.stderr.write(formatError(result.error) + '\n');
      return result.error instanceof FacepipeError ? result.error.exitCode : 1;
    }
    return result.status === 'ok' ? 0 : result.status === 'interrupted' ? 130 : 1;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}

/** Jobs of this workspace still queued or running on a cluster (a run in progress, or one whose runner died). */
async function printJobs(root: string): Promise<void> {
  const { workspaceJobs } = await import('../../execute/executors/registry.js');
  const lines = await workspaceJobs(root);
  if (lines.length) process.stdout.write(lines.join('\n') + '\n');
}

const list = (v: string[] | undefined) =>
  (v ?? [])
    .flatMap((x) => x.split(','))
    .map((x) => x.trim())
    .filter(Boolean);

export function selectionOf(o: RunCliOptions): Selection {
  return {
    force: [...list(o.force), ...(o.forceAll ? ['all'] : [])],
    forceDownstream: list(o.forceDownstream),
    until: list(o.until),
  };
}

const epochs = (n: number) => `${n} epoch${n === 1 ? '' : 's'}`;

/** The plan of each rung of a halving sweep, as far as the cache knows the rankings. */
function printRungs(rungs: RungPlan[]): void {
  for (const r of rungs) {
    if (r.bracket && r.rung === 1) process.stdout.write(`hyperband bracket ${r.bracket.index} of ${r.bracket.of}:\n`);
    if (!r.stages) {
      process.stdout.write(
        `rung ${r.rung} (${epochs(r.epochs)}): its points follow from the ranking of rung ${r.rung - 1}\n`,
      );
      continue;
    }
    const n = r.experiments!.length;
    process.stdout.write(`rung ${r.rung} (${epochs(r.epochs)}, ${n} experiment${n === 1 ? '' : 's'}):\n`);
    printPlan(r.stages);
  }
}

/**
 * What a finished run prints: where the outputs are and the last figures; a sweep names its best point (a halving
 * sweep among its last rung's experiments, by its validation metric).
 */
async function printEnd(
  root: string,
  experiments: Experiment[],
  result: RunResult & { halving?: HalvingOutcome },
  o: RunCliOptions,
  stages: StageResult[] = result.stages,
): Promise<void> {
  const headline = experiments.length > 1 || result.halving ? await import('../headline.js') : undefined;
  const best = headline?.sweepBest(experiments, stages, o.metric);
  if (o.progress === 'json') {
    if (best) jsonRenderer()(best);
    return;
  }
  if (result.status === 'ok' && experiments.length === 1 && !result.halving)
    process.stdout.write(outputSummary(root, result.stages));
  else if (result.status === 'ok')
    process.stdout.write(`outputs: results/<experiment>/<stage>/<output>; compare them with: facepipe exps\n`);
  if (best) process.stdout.write(headline!.formatSweepBest(best));
}

/** Where each output landed (with a folder's first files) and the last stage's figures: what a user looks for. */
export function outputSummary(root: string, stages: StageResult[]): string {
  const lines: string[] = [];
  for (const s of stages) {
    for (const o of Object.values(s.outputs)) {
      const rel = o.path.slice(root.length + 1) + (o.type === 'dir' ? '/' : '');
      let files = '';
      if (o.type === 'dir') {
        try {
          const names = readdirSync(o.path).sort();
          files = names.slice(0, 6).join(', ') + (names.length > 6 ? `, ... (${names.length} files)` : '');
        } catch {
          /* not materialised */
        }
      }
      lines.push(`  ${rel.padEnd(44)} ${files}`);
    }
  }
  const last = stages.at(-1);
  const figures = last
    ? Object.entries(last.metrics)
        .filter(([k]) => k !== 'backend' && k !== 'adapter')
        .map(([k, v]) => `${k} ${typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(4)) : v}`)
    : [];
  return `outputs:\n${lines.join('\n')}\n${figures.length ? `${last!.stage}: ${figures.join(', ')}\n` : ''}`;
}
