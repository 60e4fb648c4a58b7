// The figures a run ends with: each experiment's headline metrics (as the stage kinds declare them) and, for a
// sweep, its best point on the selected metric (src/compare/best.ts picks it, as exps and the report do).
import { isSeedParam, statOf } from '../compare/aggregate.js';
import { defaultMetric, parseMetricOption, pickBest, type MetricChoice, type StageHeadline } from '../compare/best.js';
import { formatStat } from '../compare/table.js';
import { canonicalJson } from '../core/hash.js';
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
  const scored = experiments.filter((e) => typeof value(e) === 'number').length;
  const event = {
    type: 'sweep-best' as const,
    metric: metric.name,
    goal: metric.goal,
    experiments: experiments.length,
    scored,
  };
  // Points that differ only in seeds are one candidate, judged by its mean: one lucky seed does not win.
  const groups = new Map<string, Experiment[]>();
  for (const e of experiments) {
    const k = canonicalJson(Object.entries(e.point ?? {}).filter(([p]) => !isSeedParam(p)));
    groups.set(k, [...(groups.get(k) ?? []), e]);
  }
  const candidates = [...groups.values()].map((members) => {
    const values = members.map(value).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    return { members, stat: values.length ? statOf(values) : undefined };
  });
  const best = pickBest(candidates, (c) => c.stat?.mean, metric.goal);
  if (!best) return event;
  const { members, stat } = best.item;
  const point = Object.fromEntries(Object.entries(members[0].point ?? {}).filter(([p]) => !isSeedParam(p)));
  if (members.length === 1)
    return { ...event, experiment: members[0].name, point: members[0].point ?? {}, value: best.value };
  return {
    ...event,
    experiment: members[0].name,
    point,
    value: best.value,
    replicates: { n: stat!.n, std: stat!.std, experiments: members.map((m) => m.name) },
  };
}

export function formatSweepBest(e: Extract<RunEvent, { type: 'sweep-best' }>): string {
  if (e.experiment === undefined) return `best point: none of the ${e.experiments} experiments has ${e.metric}\n`;
  const point = Object.entries(e.point ?? {})
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(' ');
  const left = e.scored < e.experiments ? ` (${e.experiments - e.scored} without it)` : '';
  if (e.replicates) {
    const r = e.replicates;
    const value = formatStat({ mean: e.value!, std: r.std, n: r.n, values: [] });
    return `best point by ${e.metric} (${e.goal}, mean over seeds) of ${e.scored} experiments${left}: ${e.experiment} +${r.experiments.length - 1}  ${point || '(seeds only)'}  ${e.metric} ${value}\n`;
  }
  return `best point by ${e.metric} (${e.goal}) of ${e.scored} experiments${left}: ${e.experiment}  ${point}  ${e.metric} ${num(e.value!)}\n`;
}
