// `facepipe exps diff A B`: two experiments side by side, as `dvc exp diff` shows them: the params and metrics
// that differ (all of them, backends included, with `all`), each with the change from A to B.
import { didYouMean, FacepipeError } from '../core/errors.js';
import type { CellValue, ExperimentRecord } from './load.js';
import { formatNumber, isEnvironmentMetric, mdCell } from './table.js';

export interface DiffRow {
  name: string;
  a: CellValue;
  b: CellValue;
  /** B - A for two numbers; 'changed' for other values that differ; null when equal or one side is missing. */
  change: number | 'changed' | null;
}

export interface ExperimentDiff {
  a: string;
  b: string;
  params: DiffRow[];
  metrics: DiffRow[];
}

/** An experiment by exact name, else by a unique prefix or suffix (the point hash: `3fcca7`). */
export function findExperiment(exps: ExperimentRecord[], name: string): ExperimentRecord {
  const exact = exps.find((e) => e.name === name);
  if (exact) return exact;
  const near = exps.filter((e) => e.name.startsWith(name) || e.name.endsWith(name));
  if (near.length === 1) return near[0];
  const names = exps.map((e) => e.name);
  const guess = didYouMean(name, names);
  throw new FacepipeError({
    code: 'unknown-experiment',
    file: 'command line',
    message: `no experiment ${JSON.stringify(name)}${near.length > 1 ? ` (matches ${near.map((e) => e.name).join(', ')})` : ''}${guess && near.length <= 1 ? `; did you mean ${JSON.stringify(guess)}?` : ''}`,
    hint: names.length ? `experiments: ${names.join(', ')}` : 'no experiments yet: facepipe run first',
  });
}

function change(a: CellValue, b: CellValue): DiffRow['change'] {
  if (typeof a === 'number' && typeof b === 'number') return Number((b - a).toPrecision(12));
  if (a === null || b === null || JSON.stringify(a) === JSON.stringify(b)) return null;
  return 'changed';
}

function rows(a: Record<string, CellValue>, b: Record<string, CellValue>, keep: (r: DiffRow) => boolean): DiffRow[] {
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return names
    .map((name) => {
      const x = name in a ? a[name] : null;
      const y = name in b ? b[name] : null;
      return { name, a: x, b: y, change: change(x, y) };
    })
    .filter(keep);
}

export function diffExperiments(a: ExperimentRecord, b: ExperimentRecord, o: { all?: boolean } = {}): ExperimentDiff {
  const same = (r: DiffRow) => JSON.stringify(r.a) === JSON.stringify(r.b) && r.name in a.params === r.name in b.params;
  return {
    a: a.name,
    b: b.name,
    params: rows(a.params, b.params, (r) => !!o.all || !same(r)),
    metrics: rows(a.metrics, b.metrics, (r) => !!o.all || (!same(r) && !isEnvironmentMetric(r.name))),
  };
}

function changeText(c: DiffRow['change']): string {
  if (c === null) return '';
  if (c === 'changed') return 'changed';
  return c > 0 ? `+${formatNumber(c)}` : formatNumber(c);
}

const cell = (v: CellValue) => (v === null ? '-' : typeof v === 'number' ? formatNumber(v) : String(v));

function section(title: string, d: ExperimentDiff, list: DiffRow[]): string[][] {
  if (!list.length) return [];
  return [[title, d.a, d.b, 'change'], ...list.map((r) => [r.name, cell(r.a), cell(r.b), changeText(r.change)])];
}

/** Two aligned blocks, params then metrics. */
export function formatDiffText(d: ExperimentDiff): string {
  const blocks = [section('param', d, d.params), section('metric', d, d.metrics)].filter((b) => b.length);
  if (!blocks.length) return `${d.a} and ${d.b}: the same params and metrics (--all lists them)\n`;
  const all = blocks.flat();
  const width = [0, 1, 2, 3].map((i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 0 || i === 3 ? c.padEnd(width[i]) : c.padStart(width[i])))
      .join('  ')
      .trimEnd();
  const out = blocks.map((b) => b.map(line).join('\n'));
  if (!d.params.length) out.unshift(`params: the same in ${d.a} and ${d.b}`);
  if (!d.metrics.length) out.push(`metrics: the same in ${d.a} and ${d.b}`);
  return out.join('\n\n') + '\n';
}

export function formatDiffMd(d: ExperimentDiff): string {
  const table = (rowsOf: string[][]) =>
    rowsOf.length
      ? [
          `| ${rowsOf[0].map(mdCell).join(' | ')} |`,
          '| --- | ---: | ---: | ---: |',
          ...rowsOf.slice(1).map((r) => `| ${r.map(mdCell).join(' | ')} |`),
        ].join('\n') + '\n'
      : '';
  return [table(section('param', d, d.params)), table(section('metric', d, d.metrics))].filter(Boolean).join('\n');
}

export function formatDiffJson(d: ExperimentDiff): string {
  return JSON.stringify(d, null, 2) + '\n';
}
