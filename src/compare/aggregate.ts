// Seed replicates: experiments that differ only in seed params (`*.seed`: split.seed, pretext.seed,
// triarchy.seed, ...) are one group, shown as one row with each numeric metric as mean ± std over the group and
// the number of experiments that have it. One seed is not a result; the group is.
import type { CellValue, ExperimentRecord } from './load.js';

/** A metric over a group of replicates: mean, sample standard deviation (n - 1; null below 2), n, the values. */
export interface Stat {
  mean: number;
  std: number | null;
  n: number;
  values: number[];
}

/** What a table cell holds: one experiment's value, or a group's statistic. */
export type TableCell = CellValue | Stat;

export function isStat(v: TableCell | undefined): v is Stat {
  return typeof v === 'object' && v !== null;
}

/** A param that only picks random numbers: `seed`, or any `*.seed`. */
export function isSeedParam(name: string): boolean {
  return /(^|\.)seed$/.test(name);
}

export function statOf(values: number[]): Stat {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n < 2 ? null : Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1));
  return { mean, std, n, values };
}

/** A number a statistic stands for (its mean), or the number itself; undefined for anything else. */
export function numberOf(v: TableCell | undefined): number | undefined {
  if (isStat(v)) return v.mean;
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** The key experiments share when they differ only in seeds: the pipeline and every other param, exactly. */
export function replicateKey(e: ExperimentRecord): string {
  const params = Object.entries(e.params)
    .filter(([k]) => !isSeedParam(k))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([e.pipeline, params]);
}

/** Experiments grouped by replicateKey, groups and members in first-seen order. */
export function replicateGroups(exps: ExperimentRecord[]): ExperimentRecord[][] {
  const groups = new Map<string, ExperimentRecord[]>();
  for (const e of exps) {
    const k = replicateKey(e);
    groups.set(k, [...(groups.get(k) ?? []), e]);
  }
  return [...groups.values()];
}

/**
 * One cell over a group's members: numbers become a Stat (mean ± std, n = the members that have one); equal
 * values stay as they are; other differing values (a seed param, text) are listed, distinct, sorted, comma-separated.
 */
export function aggregateCell(values: CellValue[], numeric: boolean): TableCell {
  const numbers = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (numeric && numbers.length) return statOf(numbers);
  const distinct = [...new Set(values.map((v) => JSON.stringify(v)))].map((s) => JSON.parse(s) as CellValue);
  if (distinct.length === 1) return distinct[0];
  // Sorted (numbers numerically), so the seeds 0, 1, 2 read 0,1,2 whatever order the experiments load in.
  const present = distinct.filter((v) => v !== null);
  const allNumbers = present.every((v) => typeof v === 'number');
  return present
    .sort((a, b) =>
      allNumbers ? (a as number) - (b as number) : String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0,
    )
    .map((v) => String(v))
    .join(',');
}
