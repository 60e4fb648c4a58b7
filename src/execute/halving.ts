// Runs a successive-halving sweep (src/plan/halving.ts plans it): one run of the runner per rung, inside the
// session's lock. A rung trains its candidates' experiments to the rung's epochs (up to the stage trained in rungs;
// the last rung takes every stage), ranks the candidates by the validation metric and promotes the best; promoted
// experiments continue from their cached epoch state. Each rung's decisions follow from cached results only, so a
// rerun after a kill -9 finds the finished rungs cached, ranks them the same, and goes on where the work stopped.
import type { Experiment } from '../plan/experiments.js';
import { rank, standingAfter, standingDuring, type HalvingPlan, type SweepStanding } from '../plan/halving.js';
import type { Point } from '../plan/sweep.js';
import { runExperiments, type RunOptions, type RunResult, type StageResult } from './runner.js';
import { writeStanding } from './run-record.js';
import { planExperiments, type StagePlan } from './status.js';

export interface HalvingSetup {
  /**
   * One bracket (successive halving), or Hyperband's, one after another: each its plan (rungs) and its candidates
   * in sweep order; points that differ only in seed params (--seeds) are one candidate, going on or stopping together.
   */
  brackets: Array<{ plan: HalvingPlan; candidates: Point[][] }>;
  /** The experiment of a point at a rung's epochs (the same name at every rung). */
  experiment(point: Point, epochs: number): Experiment;
}

export interface HalvingOutcome {
  /** Each rung's run. */
  runs: RunResult[];
  /** The experiments of each bracket's last rung that ran, and their results (the sweep's best is among them). */
  finalists: Experiment[];
  finalStages: StageResult[];
  /** Every experiment's last standing, by name. */
  standings: Map<string, SweepStanding>;
}

const RUN_ORDER: Record<RunResult['status'], number> = { ok: 0, failed: 1, interrupted: 2 };

/** The metric of each candidate: the mean over its experiments that have it (undefined: none has). */
function scores(exps: Experiment[][], metricOf: (e: Experiment) => number | undefined) {
  return exps.map((members) => {
    const values = members.map(metricOf).filter((v): v is number => v !== undefined && Number.isFinite(v));
    return { item: members, value: values.length ? values.reduce((a, b) => a + b, 0) / values.length : undefined };
  });
}

function metricReader(plan: HalvingPlan, stages: Array<Pick<StageResult, 'experiment' | 'stage' | 'metrics'>>) {
  const name = plan.metric.slice(plan.stage.length + 1);
  return (e: Experiment) => {
    const v = stages.find((s) => s.experiment === e.name && s.stage === plan.stage)?.metrics[name];
    return typeof v === 'number' ? v : undefined;
  };
}

type DriverOptions = Omit<RunOptions, 'experiments'> & { setup: HalvingSetup };

export async function runHalving(o: DriverOptions): Promise<RunResult & { halving: HalvingOutcome }> {
  const outcome: HalvingOutcome = { runs: [], finalists: [], finalStages: [], standings: new Map() };
  for (const b of o.setup.brackets) if (!(await runBracket(o, b.plan, b.candidates, outcome))) break;
  const { runs } = outcome;
  const worst = runs.reduce((a, b) => (RUN_ORDER[b.status] > RUN_ORDER[a.status] ? b : a));
  return {
    ...runs.at(-1)!,
    status: worst.status,
    error: runs.find((x) => x.error)?.error,
    stages: runs.flatMap((x) => x.stages),
    halving: outcome,
  };
}

/** The rungs of one bracket; false when the run was interrupted (or failed as a whole) and the sweep stops. */
async function runBracket(o: DriverOptions, plan: HalvingPlan, candidates: Point[][], out: HalvingOutcome) {
  let alive = candidates;
  for (const [r, rung] of plan.rungs.entries()) {
    const last = r === plan.rungs.length - 1;
    const groups = alive.map((points) => points.map((pt) => o.setup.experiment(pt, rung.epochs)));
    const experiments = groups.flat();
    for (const e of experiments) e.standing = standingDuring(plan, r, 'running');
    o.emit({
      type: 'sweep-rung',
      rung: r + 1,
      rungs: plan.rungs.length,
      ...(plan.bracket ? { bracket: plan.bracket } : {}),
      param: plan.path,
      epochs: rung.epochs,
      experiments: experiments.map((e) => e.name),
    });
    // Before the last rung only the stage trained in rungs and what it needs run: the test set never chooses.
    const selection = last ? o.selection : { ...o.selection, until: [plan.stage] };
    const result = await runExperiments({ ...o, experiments, selection });
    out.runs.push(result);
    if (result.status === 'interrupted' || result.error || o.signal.aborted) {
      for (const e of experiments) {
        const st = standingDuring(plan, r, 'interrupted');
        out.standings.set(e.name, st);
        writeStanding(o.workspace, e.name, st);
      }
      return false;
    }
    alive = rankRung(o, plan, r, groups, result.stages, out.standings);
    if (last || !alive.length) {
      out.finalists.push(...experiments);
      out.finalStages.push(...result.stages);
      break;
    }
  }
  return true;
}

/** Rank a rung's candidates, record each experiment's standing, say it, and return the promoted candidates. */
function rankRung(
  o: DriverOptions,
  plan: HalvingPlan,
  r: number,
  groups: Experiment[][],
  stages: StageResult[],
  standings: Map<string, SweepStanding>,
): Point[][] {
  const metricOf = metricReader(plan, stages);
  const ranked = rank(scores(groups, metricOf), plan.goal);
  const promoted: Point[][] = [];
  const lines: Array<{ experiment: string; rank: number; value?: number; state: string; why: string }> = [];
  for (const c of ranked) {
    const failed = c.item
      .map((e) => stages.find((s) => s.experiment === e.name && s.stage === plan.stage))
      .find((s) => s && s.state !== 'done' && s.state !== 'cached');
    const st = standingAfter(plan, r, c, ranked.length, failed && `${plan.stage} ${failed.state}`);
    if (st.state === 'promoted') promoted.push(c.item.map((e) => e.point ?? {}));
    for (const e of c.item) {
      standings.set(e.name, st);
      writeStanding(o.workspace, e.name, st);
      lines.push({ experiment: e.name, rank: c.rank, value: metricOf(e), state: st.state, why: st.why });
    }
  }
  o.emit({
    type: 'sweep-ranking',
    rung: r + 1,
    rungs: plan.rungs.length,
    ...(plan.bracket ? { bracket: plan.bracket } : {}),
    epochs: plan.rungs[r].epochs,
    metric: plan.metric,
    goal: plan.goal,
    ranked: lines,
  });
  return promoted;
}

export interface RungPlan {
  /** Hyperband: the bracket of this rung. */
  bracket?: { index: number; of: number };
  rung: number;
  epochs: number;
  /** The plan of every stage of the rung's experiments, or undefined when an earlier rung is not all cached. */
  stages?: StagePlan[];
  /** The rung's experiments (known once the rungs before it are cached). */
  experiments?: string[];
}

/**
 * What a halving sweep would do, without running anything: each bracket's first rung's plan, and each later rung's
 * as long as the rungs before it are all cached (their ranking is then known from the cache).
 */
export async function planHalvingRun(
  o: Pick<RunOptions, 'workspace' | 'selection'> & { setup: HalvingSetup; warn?: (m: string) => void },
): Promise<RungPlan[]> {
  const out: RungPlan[] = [];
  for (const b of o.setup.brackets) out.push(...(await planBracket(o, b.plan, b.candidates)));
  return out;
}

async function planBracket(
  o: Pick<RunOptions, 'workspace' | 'selection'> & { setup: HalvingSetup; warn?: (m: string) => void },
  plan: HalvingPlan,
  candidates: Point[][],
): Promise<RungPlan[]> {
  const out: RungPlan[] = [];
  const bracket = plan.bracket ? { bracket: plan.bracket } : {};
  let alive: Point[][] | undefined = candidates;
  for (const [r, rung] of plan.rungs.entries()) {
    if (!alive) {
      out.push({ ...bracket, rung: r + 1, epochs: rung.epochs });
      continue;
    }
    const last = r === plan.rungs.length - 1;
    const groups: Experiment[][] = alive.map((points) => points.map((pt) => o.setup.experiment(pt, rung.epochs)));
    const selection = last ? (o.selection ?? {}) : { ...o.selection, until: [plan.stage] };
    const stages = await planExperiments(o.workspace, groups.flat(), selection, o.warn);
    out.push({ ...bracket, rung: r + 1, epochs: rung.epochs, stages, experiments: groups.flat().map((e) => e.name) });
    const trained = stages.filter((s) => s.stage === plan.stage);
    if (last || trained.some((s) => s.action !== 'cached')) {
      alive = undefined;
      continue;
    }
    const results = trained.map((s) => ({ experiment: s.experiment, stage: s.stage, metrics: s.metrics ?? {} }));
    const ranked: Array<{ item: Experiment[]; value?: number; rank: number }> = rank(
      scores(groups, metricReader(plan, results)),
      plan.goal,
    );
    const next = plan.rungs[r + 1].candidates;
    alive = ranked.filter((c) => c.value !== undefined && c.rank <= next).map((c) => c.item.map((e) => e.point ?? {}));
  }
  return out;
}
