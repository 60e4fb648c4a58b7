// Successive halving (Jamieson & Talwalkar 2016; the inner loop of Hyperband): every point trains to min_epochs,
// the points are ranked by a validation metric of the stage that trains, the best 1/eta go on to eta times the
// epochs, and so on up to max_epochs; only the last rung's points run the stages after it (prune, evaluate: the
// test set never chooses). Promoted points continue from their cached epoch state (epoch-prefix reuse), so no
// epoch is trained twice. This module plans and ranks; src/execute/halving.ts runs the rungs.
import { headlineOf } from '../contracts/stage-kind.js';
import { canonicalJson } from '../core/hash.js';
import { FacepipeError, type Diagnostic } from '../core/errors.js';
import type { PipelineSpec } from '../load/load.js';
import type { HalvingSpec, Point, SweepSpec } from './sweep.js';

export interface Rung {
  /** The budget param's value (epochs) at this rung. */
  epochs: number;
  /** How many candidates train at this rung. */
  candidates: number;
}

export interface HalvingPlan {
  /** `stage.metric`, and which way is better. */
  metric: string;
  goal: 'max' | 'min';
  /** The stage trained in rungs and its epochs param: `triarchy`, `epochs`, `triarchy.epochs`. */
  stage: string;
  param: string;
  path: string;
  eta: number;
  rungs: Rung[];
  /** Why promoted points cannot continue from their cached epoch (they then train from epoch 0), if so. */
  blocked?: string;
  /** Hyperband: which bracket this is (1-based), of how many. */
  bracket?: { index: number; of: number };
}

/** Where a point stands in a halving sweep (results/<experiment>/experiment.json `sweep`, exps, the report). */
export interface SweepStanding {
  method: 'halving';
  /** The rung reached (1-based), of how many, and its epochs. */
  rung: number;
  rungs: number;
  epochs: number;
  state: 'running' | 'promoted' | 'stopped' | 'final' | 'failed' | 'interrupted';
  /** Hyperband: the bracket the point was drawn for. */
  bracket?: { index: number; of: number };
  metric: string;
  value?: number;
  /** Its rank at that rung (1 = best), among how many candidates. */
  rank?: number;
  of?: number;
  /** In words: why it stopped (or went on). */
  why: string;
}

/**
 * The epochs of each rung: min, min * eta, ... (rounded, strictly growing), the last one max; and how many
 * candidates train at each: floor(n / eta^i), at least 1.
 */
export function rungSchedule(minEpochs: number, maxEpochs: number, eta: number, n: number): Rung[] {
  const epochs: number[] = [minEpochs];
  while (epochs.at(-1)! < maxEpochs)
    epochs.push(Math.min(maxEpochs, Math.max(epochs.at(-1)! + 1, Math.round(epochs.at(-1)! * eta))));
  return epochs.map((e, i) => ({ epochs: e, candidates: Math.max(1, Math.floor(n / eta ** i + 1e-9)) }));
}

/**
 * Hyperband's brackets (Li et al. 2018): s_max = floor(log_eta(max / min)); bracket s = s_max .. 0 starts
 * ceil((s_max + 1) / (s + 1) * eta^s) points at max / eta^s epochs and halves them up to max: from many points
 * stopped early to a few trained fully, which hedges against an early ranking that misleads.
 */
export function hyperbandBrackets(minEpochs: number, maxEpochs: number, eta: number): Rung[][] {
  const sMax = Math.floor(Math.log(maxEpochs / minEpochs) / Math.log(eta) + 1e-9);
  return Array.from({ length: sMax + 1 }, (_, k) => {
    const s = sMax - k;
    const first = Math.max(minEpochs, Math.round(maxEpochs / eta ** s));
    return rungSchedule(first, maxEpochs, eta, Math.ceil(((sMax + 1) / (s + 1)) * eta ** s - 1e-9));
  });
}

function fail(where: Partial<Diagnostic> | undefined, message: string, hint: string): FacepipeError {
  return new FacepipeError({ code: 'bad-sweep', file: 'command line', message, hint, ...where });
}

/** The stages whose kinds continue from an earlier epoch, with their headline metrics. */
function trainingStages(pipeline: PipelineSpec) {
  return pipeline.stages
    .filter((s) => s.kind.epochPrefix)
    .map((s) => ({ stage: s, headline: headlineOf(s.kind, s.params) }));
}

/** The metric (option, then the sweep's own, then the default), checked against the pipeline. */
function pickMetric(h: HalvingSpec, pipeline: PipelineSpec, option?: string) {
  const where = option ? { file: 'command line', keyPath: `--metric ${option}` } : h.where.metric;
  const trained = trainingStages(pipeline);
  const known = trained.flatMap((t) => t.headline.map((m) => `${t.stage.name}.${m.metric}`));
  const text = option ?? h.metric;
  if (text === undefined) {
    const last = trained.at(-1);
    if (!last?.headline.length)
      throw fail(
        h.where.metric,
        `successive halving needs a stage that trains in epochs and can continue from an earlier one; ${pipeline.file} has none with metrics`,
        'give sweep.metric (a validation metric of such a stage)',
      );
    return { name: `${last.stage.name}.${last.headline[0].metric}`, goal: h.mode ?? last.headline[0].goal };
  }
  const m = /^(.*?)(?::(max|min))?$/.exec(text.trim())!;
  const name =
    known.find((k) => k === m[1]) ??
    (known.filter((k) => k.endsWith(`.${m[1]}`)).length === 1 ? known.find((k) => k.endsWith(`.${m[1]}`)) : undefined);
  if (!name) {
    const stage = m[1].split('.')[0];
    const other = pipeline.stages.find((s) => s.name === stage);
    throw fail(
      where,
      other && !other.kind.epochPrefix
        ? `halving metric ${m[1]}: ${stage} is not trained in rungs (its kind does not train in epochs); rankings use a validation metric of the stage that trains, never the test set`
        : `halving metric ${m[1]}: not a metric of a stage trained in rungs`,
      known.length ? `use one of ${known.join(', ')}` : `${pipeline.file} has no stage that trains in epochs`,
    );
  }
  const stage = trained.find((t) => name.startsWith(`${t.stage.name}.`))!;
  const declared = stage.headline.find((x) => `${stage.stage.name}.${x.metric}` === name)!;
  return { name, goal: (m[2] as 'max' | 'min' | undefined) ?? h.mode ?? declared.goal };
}

/**
 * The plan of a halving sweep over `candidates` candidates (points that differ in more than seeds): the metric, the
 * stage trained in rungs, the rungs. Bad input names where it was given: a metric that is not a validation metric
 * of a stage that trains in epochs, a sweep or --set of that stage's epochs param (halving sets it per rung).
 */
export function planHalving(
  spec: SweepSpec & { halving: HalvingSpec },
  pipeline: PipelineSpec,
  candidates: number,
  o: { metricOption?: string; sets?: string[] } = {},
): HalvingPlan {
  const h = spec.halving;
  const metric = pickMetric(h, pipeline, o.metricOption);
  const stageName = metric.name.slice(0, metric.name.indexOf('.'));
  const stage = pipeline.stages.find((s) => s.name === stageName)!;
  const param = stage.kind.epochPrefix!.param;
  const path = `${stageName}.${param}`;
  if (path in spec.params)
    throw fail(
      spec.where?.[path],
      `sweep param ${path} is the halving budget: each rung sets it (min_epochs ${h.minEpochs} to max_epochs ${h.maxEpochs})`,
      `remove ${path} from the sweep params`,
    );
  const set = (o.sets ?? []).find((s) => s.trim().startsWith(`${path}=`));
  if (set)
    throw fail(
      { file: 'command line', keyPath: `--set ${set}` },
      `--set ${set}: ${path} is the halving budget, set by each rung`,
      'drop the --set; give min_epochs and max_epochs instead',
    );
  const blocker = stage.kind.epochPrefix!.blocker?.(stage.params);
  return {
    metric: metric.name,
    goal: metric.goal,
    stage: stageName,
    param,
    path,
    eta: h.eta,
    rungs: rungSchedule(h.minEpochs, h.maxEpochs, h.eta, candidates),
    ...(blocker ? { blocked: blocker } : {}),
  };
}

/**
 * The brackets of a halving sweep: one for successive halving (over `candidates` candidates), or Hyperband's,
 * each with its own number of candidates (see hyperbandBrackets).
 */
export function planBrackets(
  spec: SweepSpec & { halving: HalvingSpec },
  pipeline: PipelineSpec,
  candidates: number,
  o: { metricOption?: string; sets?: string[] } = {},
): HalvingPlan[] {
  const plan = planHalving(spec, pipeline, candidates, o);
  if (!spec.halving.hyperband) return [plan];
  const brackets = hyperbandBrackets(spec.halving.minEpochs, spec.halving.maxEpochs, spec.halving.eta);
  return brackets.map((rungs, i) => ({ ...plan, rungs, bracket: { index: i + 1, of: brackets.length } }));
}

/** A candidate: the point without its seed params; its replicates (--seeds) go on or stop together. */
export function candidateKey(point: Point, seedPaths: string[] = []): string {
  return canonicalJson(Object.entries(point).filter(([p]) => !seedPaths.includes(p)));
}

export interface Scored<T> {
  item: T;
  /** The metric (a mean over its replicates), undefined when it has none (failed, interrupted). */
  value?: number;
}

/**
 * Rank candidates: better values first; ties keep the sweep's order, so a rerun ranks exactly the same; those
 * without a value come last.
 */
export function rank<T>(scored: Array<Scored<T>>, goal: 'max' | 'min'): Array<Scored<T> & { rank: number }> {
  const order = scored.map((s, i) => ({ ...s, i }));
  order.sort((a, b) => {
    const av = a.value;
    const bv = b.value;
    if (av === undefined || bv === undefined) return av === bv ? a.i - b.i : av === undefined ? 1 : -1;
    return (goal === 'max' ? bv - av : av - bv) || a.i - b.i;
  });
  return order.map((s, k) => ({ item: s.item, value: s.value, rank: k + 1 }));
}

const fmt = (v: number) => String(Number(v.toPrecision(4)));
const epochsText = (n: number) => `${n} epoch${n === 1 ? '' : 's'}`;

/** The standing of one ranked candidate after rung `r` (0-based) of the plan. */
export function standingAfter(
  plan: HalvingPlan,
  r: number,
  ranked: { rank: number; value?: number },
  of: number,
  failed?: string,
): SweepStanding {
  const rung = plan.rungs[r];
  const last = r === plan.rungs.length - 1;
  const base = {
    method: 'halving' as const,
    rung: r + 1,
    rungs: plan.rungs.length,
    epochs: rung.epochs,
    ...(plan.bracket ? { bracket: plan.bracket } : {}),
  };
  const b = bracketText(plan);
  const by = ranked.value === undefined ? '' : ` by ${plan.metric} ${fmt(ranked.value)}`;
  if (failed !== undefined || ranked.value === undefined)
    return {
      ...base,
      state: 'failed',
      metric: plan.metric,
      rank: ranked.rank,
      of,
      why: `${b}stopped at ${epochsText(rung.epochs)}: no ${plan.metric} (${failed ?? 'not reported'})`,
    };
  const at = { ...base, metric: plan.metric, value: ranked.value, rank: ranked.rank, of };
  if (last)
    return {
      ...at,
      state: 'final',
      why: `${b}the last rung: trained to ${epochsText(rung.epochs)}, then the stages after ${plan.stage}; rank ${ranked.rank} of ${of}${by}`,
    };
  const next = plan.rungs[r + 1];
  const went = `the best ${next.candidates} went on to ${epochsText(next.epochs)}`;
  const place = `rank ${ranked.rank} of ${of}${by}; ${went}`;
  return ranked.rank <= next.candidates
    ? { ...at, state: 'promoted', why: `${b}promoted at ${epochsText(rung.epochs)}: ${place}` }
    : { ...at, state: 'stopped', why: `${b}stopped at ${epochsText(rung.epochs)}: ${place}` };
}

const bracketText = (plan: HalvingPlan) =>
  plan.bracket ? `bracket ${plan.bracket.index} of ${plan.bracket.of}: ` : '';

/** The standing while rung `r` runs, or when the run stopped in it. */
export function standingDuring(plan: HalvingPlan, r: number, state: 'running' | 'interrupted'): SweepStanding {
  const rung = plan.rungs[r];
  return {
    method: 'halving',
    rung: r + 1,
    rungs: plan.rungs.length,
    epochs: rung.epochs,
    state,
    ...(plan.bracket ? { bracket: plan.bracket } : {}),
    metric: plan.metric,
    why:
      bracketText(plan) +
      (state === 'running'
        ? `training to ${epochsText(rung.epochs)}`
        : `interrupted at the ${epochsText(rung.epochs)} rung`),
  };
}

/**
 * "halving: 9 points, triarchy.epochs 20 -> 60 -> 180 (9, 3, 1 candidates), ranked by triarchy.val_auc (max), eta 3";
 * Hyperband: a line per bracket.
 */
export function describePlan(plans: HalvingPlan[], points: number): string {
  const plan = plans[0];
  const rungs = (p: HalvingPlan) =>
    `${plan.path} ${p.rungs.map((r) => r.epochs).join(' -> ')} (${p.rungs.map((r) => r.candidates).join(', ')} candidates)`;
  const blocked = plan.blocked ? `; promoted points train from epoch 0: ${plan.blocked}` : '';
  const by = `ranked by ${plan.metric} (${plan.goal}), eta ${plan.eta}${blocked}`;
  if (!plan.bracket) return `halving: ${points} points, ${rungs(plan)}, ${by}`;
  const lines = plans.map((p) => `  bracket ${p.bracket!.index}: ${rungs(p)}`);
  return `hyperband: ${plans.length} brackets, ${points} points, ${by}\n${lines.join('\n')}`;
}
