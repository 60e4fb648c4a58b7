// The figures a run ends with: each experiment's headline metrics (as the stage kinds declare them) and, for a
// sweep, its best point on the selected metric (src/compare/best.ts picks it, as exps and the report do).
import { defaultMetric, parseMetricOption, pickBest, type MetricChoice, type StageHeadline } from '../compare/best.js';
import type { RunEvent } from '../contracts/events.js';
import { headlineOf } from '../contracts/stage-kind.js';
import type { Experiment, StageResult } from '../execute/runner.js';

const num = (v: number | string) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(4)) : v);

export function headlinesOf(exp: Experiment): StageHeadline[] {
  return exp.graph.order.map((s) => ({ stage: s.name, headline: headlineOf(s.kind, s.params) }));
}

/** "evaluate: auc 0.9313, accuracy 0.841, eer 0.142" for each stage of `exp` with headline metrics it reported. */
export function headlineLines(exp: Experiment, results: StageResult[]): string[] {
  const lines: string[] = [];
  for (const h of headlinesOf(exp)) {
    const r = results.find((x) => x.experiment === exp.name && x.stage === h.stage);
    const figures = h.headline.filter((m) => r && m.metric in r.metrics);
    if (r && figures.length)
      lines.push(`${r.id}: ${figures.map((m) => `${m.metric} ${num(r.metrics[m.metric])}`).join(', ')}`);
  }
  return lines;
}

/** The metric columns the results have, `stage.metric`. */
function metricNames(results: StageResult[]): string[] {
  return [...new Set(results.flatMap((r) => Object.keys(r.metrics).map((m) => `${r.stage}.${m}`)))];
}

/**
 * The sweep-best event: the best experiment on `--metric` (or the default headline metric), or undefined when
 * there is no metric to judge by. Experiments without the metric (failed, interrupted) are left out.
 */
export function sweepBest(
  experiments: Experiment[],
  results: StageResult[],
  metricOption: string | undefined,
): Extract<RunEvent, { type: 'sweep-best' }> | undefined {
  const headlines = headlinesOf(experiments[0]);
  const metric: MetricChoice | undefined = metricOption
    ? parseMetricOption(metricOption, metricNames(results), headlines)
    : defaultMetric(headlines);
  if (!metric) return undefined;
  const dot = metric.name.lastIndexOf('.');
  const [stage, name] = [metric.name.slice(0, dot), metric.name.slice(dot + 1)];
  const value = (e: Experiment) => results.find((r) => r.experiment === e.name && r.stage === stage)?.metrics[name];
  const best = pickBest(experiments, value, metric.goal);
  const scored = experiments.filter((e) => typeof value(e) === 'number').length;
  return {
    type: 'sweep-best',
    metric: metric.name,
    goal: metric.goal,
    experiments: experiments.length,
    scored,
    ...(best ? { experiment: best.item.name, point: best.item.point ?? {}, value: best.value } : {}),
  };
}

export function formatSweepBest(e: Extract<RunEvent, { type: 'sweep-best' }>): string {
  if (e.experiment === undefined) return `best point: none of the ${e.experiments} experiments has ${e.metric}\n`;
  const point = Object.entries(e.point ?? {})
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(' ');
  const left = e.scored < e.experiments ? ` (${e.experiments - e.scored} without it)` : '';
  return `best point by ${e.metric} (${e.goal}) of ${e.scored} experiments${left}: ${e.experiment}  ${point}  ${e.metric} ${num(e.value!)}\n`;
}
