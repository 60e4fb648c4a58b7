// The best experiment on one metric: which metric (--metric NAME[:max|:min], else the first headline metric of
// the last stage that declares any), which way is better, and the pick. Used by `facepipe run` at the end of a
// sweep, `facepipe exps` and the report, so all three name the same experiment.
import { FacepipeError } from '../core/errors.js';
import type { CellValue } from './load.js';

export type Goal = 'max' | 'min';

export interface MetricChoice {
  /** A metric column, `stage.metric`. */
  name: string;
  goal: Goal;
}

/** A stage's headline metrics, as its kind declares them (experiment.json carries them). */
export interface StageHeadline {
  stage: string;
  headline: Array<{ metric: string; goal: Goal }>;
}

/** Lower is better for losses and error rates; higher for everything else. */
export function defaultGoal(name: string): Goal {
  const last = name.slice(name.lastIndexOf('.') + 1);
  return /(^|_)(loss|eer|error|err|far|frr|fpr|mse|mae|seconds|ms)(_|$)/i.test(last) ? 'min' : 'max';
}

/**
 * `evaluate.auc`, `evaluate.eer:min`, or a unique suffix (`auc`) among `known` metric names. Without a goal
 * suffix the goal is the one a headline declares for it, else defaultGoal.
 */
export function parseMetricOption(text: string, known: string[], headlines: StageHeadline[] = []): MetricChoice {
  const m = /^(.*?)(?::(max|min))?$/.exec(text.trim())!;
  const given = m[1];
  const exact = known.find((k) => k === given);
  const bySuffix = known.filter((k) => k.endsWith('.' + given));
  const name = exact ?? (bySuffix.length === 1 ? bySuffix[0] : undefined);
  if (!name)
    throw new FacepipeError({
      code: 'unknown-column',
      file: 'command line',
      message: `--metric ${text}: ${bySuffix.length > 1 ? `ambiguous (${bySuffix.join(', ')})` : 'no such metric'}`,
      hint: known.length
        ? `metrics: ${known.join(', ')}; add :min or :max for the goal`
        : 'no experiment has metrics yet',
    });
  const declared = headlines
    .flatMap((h) => h.headline.map((x) => ({ name: `${h.stage}.${x.metric}`, goal: x.goal })))
    .find((h) => h.name === name);
  return { name, goal: (m[2] as Goal | undefined) ?? declared?.goal ?? defaultGoal(name) };
}

/** The first headline metric of the last stage (in pipeline order) that declares one. */
export function defaultMetric(headlines: StageHeadline[]): MetricChoice | undefined {
  for (let i = headlines.length - 1; i >= 0; i--) {
    const h = headlines[i];
    if (h.headline.length) return { name: `${h.stage}.${h.headline[0].metric}`, goal: h.headline[0].goal };
  }
  return undefined;
}

/** The item with the best numeric value (ties: the first); items without a number are left out. */
export function pickBest<T>(
  items: T[],
  value: (item: T) => CellValue | undefined,
  goal: Goal,
): { item: T; value: number } | undefined {
  let best: { item: T; value: number } | undefined;
  for (const item of items) {
    const v = value(item);
    if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    if (!best || (goal === 'max' ? v > best.value : v < best.value)) best = { item, value: v };
  }
  return best;
}

/** The default metric of a set of experiments: the first headline metric of the last stage that declares any. */
export function defaultMetricOf(
  exps: Array<{ stages: Record<string, { headline: StageHeadline['headline'] }> }>,
): MetricChoice | undefined {
  for (const e of exps) {
    const m = defaultMetric(Object.entries(e.stages).map(([stage, s]) => ({ stage, headline: s.headline })));
    if (m) return m;
  }
  return undefined;
}
