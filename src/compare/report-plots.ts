// The report's figures: each metric against each swept param and a heat map for a sweep of two params (per
// sweep: experiments outside it are not plotted, constants neither), training curves per epoch overlaid per
// experiment, and the ROC curves. The page around them is report.ts. A group of seed replicates is one point,
// its mean, with an error bar of one standard deviation.
import { isSeedParam, isStat, type TableCell } from './aggregate.js';
import { pickBest, type MetricChoice } from './best.js';
import type { CellValue, TrainingCurves } from './load.js';
import { escapeHtml, heatmapSvg, plotSvg, type HeatCell, type PlotPoint, type PlotSeries } from './svg.js';
import { compareCells, displayCell, shortName, type Column, type Row, type Table } from './table.js';

/** The number a cell stands for (a group's mean), or null. */
export function numericOrNull(v: TableCell): number | null {
  if (isStat(v)) return v.mean;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** A param's value in a row (a group's members share it; listed seeds are text). */
const paramOf = (r: Row, name: string): CellValue => {
  const v = r.cells[name] ?? null;
  return isStat(v) ? v.mean : v;
};

interface AxisValues {
  scale: 'linear' | 'log' | 'category';
  categories?: string[];
  x: (v: CellValue) => number | undefined;
}

/** A value as a legend or category names it: null is a value (`margin: null` is the soft margin), not a gap. */
const valueText = (v: TableCell) => (v === null ? 'null' : displayCell(v));

/** How to place a param's values on an x axis: numbers linearly (log when all positive over 2+ decades), else as categories. */
export function xAxisFor(values: CellValue[]): AxisValues {
  const present = values.filter((v): v is Exclude<CellValue, null> => v !== null);
  if (present.length && present.length === values.length && present.every((v) => typeof v === 'number')) {
    const lo = Math.min(...present);
    const hi = Math.max(...present);
    const log = lo > 0 && hi / lo >= 100;
    return { scale: log ? 'log' : 'linear', x: (v) => (typeof v === 'number' ? v : undefined) };
  }
  const cats = [...new Set(values.map(valueText))];
  const order = new Map(values.map((v) => [valueText(v), v] as const));
  cats.sort((a, b) => compareCells(order.get(a)!, order.get(b)!));
  return { scale: 'category', categories: cats, x: (v) => cats.indexOf(valueText(v)) };
}

/** Legend order: numbers in labels compare numerically (margin=0.1 before margin=0.3). */
function compareLabels(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (a !== '' && b !== '' && Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return a.localeCompare(b, 'en', { numeric: true });
}

/** Experiments of one sweep (the same swept params) and the params that vary among them. */
export interface Family {
  params: Column[];
  rows: Row[];
}

const same = (rows: Row[], name: string) => new Set(rows.map((r) => JSON.stringify(r.cells[name] ?? null))).size < 2;
const sameParam = (rows: Row[], name: string) => new Set(rows.map((r) => JSON.stringify(paramOf(r, name)))).size < 2;

/**
 * The sweeps among the rows: experiments grouped by the params their sweep point sets. Experiments outside
 * any sweep join none. Without sweeps, one family of all rows over the params that differ (each param's plot
 * takes only the experiments that have it). When seed replicates are grouped, seeds are not swept params.
 */
export function sweepFamilies(t: Table): Family[] {
  const byKeys = new Map<string, Row[]>();
  for (const r of t.rows) {
    const keys = Object.keys(r.experiment.point)
      .filter((k) => !(t.aggregated && isSeedParam(k)))
      .sort();
    if (!keys.length) continue;
    const k = JSON.stringify(keys);
    byKeys.set(k, [...(byKeys.get(k) ?? []), r]);
  }
  const col = (name: string) => t.known.find((c) => c.name === name && c.kind === 'param');
  const families: Family[] = [];
  for (const [k, rows] of byKeys) {
    const params = (JSON.parse(k) as string[]).flatMap((n) => {
      const c = col(n);
      return c && !sameParam(rows, n) ? [c] : [];
    });
    if (rows.length >= 2 && params.length) families.push({ params, rows });
  }
  if (families.length || byKeys.size) return families;
  const params = t.columns.filter(
    (c) => c.kind === 'param' && !(t.aggregated && isSeedParam(c.name)) && !sameParam(t.rows, c.name),
  );
  return params.length && t.rows.length >= 2 ? [{ params, rows: t.rows }] : [];
}

/** The numeric metric columns shown in the table that vary among `rows`, and those that are constant. */
function familyMetrics(t: Table, rows: Row[]): { varying: Column[]; constant: Column[] } {
  const metrics = t.columns.filter(
    (c) => c.kind === 'metric' && rows.some((r) => numericOrNull(r.cells[c.name] ?? null) !== null),
  );
  return { varying: metrics.filter((c) => !same(rows, c.name)), constant: metrics.filter((c) => same(rows, c.name)) };
}

function metricPlot(f: Family, p: Column, m: Column, id: string, t: Table): string {
  const rows = f.rows.filter((r) => p.name in r.experiment.params);
  const axis = xAxisFor(rows.map((r) => paramOf(r, p.name)));
  const others = f.params.filter((o) => o !== p);
  const names = others.map((o) => o.name);
  // One series per combination of the other swept params, so a grid sweep reads as a family of lines.
  const groups = new Map<string, { label: string; points: PlotPoint[] }>();
  for (const r of rows) {
    const x = axis.x(paramOf(r, p.name));
    const cell = r.cells[m.name] ?? null;
    const y = numericOrNull(cell);
    if (x === undefined || y === null) continue;
    // With one other param the legend title names it and entries are its values; with more, short name=value pairs.
    const label =
      others.length === 1
        ? valueText(paramOf(r, others[0].name))
        : others.map((o) => `${shortName(o.name, names)}=${valueText(paramOf(r, o.name))}`).join(', ');
    let g = groups.get(label);
    if (!g) groups.set(label, (g = { label, points: [] }));
    const who = r.members ? r.members.map((e) => e.name).join('\n') : r.experiment.name;
    g.points.push({
      x,
      y,
      ...(isStat(cell) && cell.std !== null ? { err: cell.std } : {}),
      title: `${who}\n${p.name} = ${valueText(paramOf(r, p.name))}\n${m.name} = ${displayCell(cell)}`,
    });
  }
  const grouped = groups.size > 1 && groups.size <= 10;
  const series: PlotSeries[] = grouped
    ? [...groups.values()]
        .sort((a, b) => compareLabels(a.label, b.label))
        .map((g) => ({ label: g.label, points: g.points, line: 'mean' as const }))
    : [{ label: '', points: [...groups.values()].flatMap((g) => g.points), line: groups.size <= 1 ? 'mean' : false }];
  const paramNames = t.known.filter((c) => c.kind === 'param').map((c) => c.name);
  return `<figure class="metric-plot" id="${id}" data-metric="${escapeHtml(m.name)}" data-param="${escapeHtml(p.name)}">${plotSvg(
    series,
    {
      id,
      title: `${m.name} vs ${p.name}`,
      xLabel: p.name,
      yLabel: m.name,
      xScale: axis.scale,
      categories: axis.categories,
      legendTitle: grouped && others.length === 1 ? shortName(others[0].name, paramNames) : undefined,
    },
  )}</figure>`;
}

/** Heat map of one metric over a two-param sweep (mean of the experiments in a cell); the best cell outlined. */
function heatmap(f: Family, metric: MetricChoice, id: string): string {
  const [px, py] = f.params;
  const xs = xAxisFor(f.rows.map((r) => paramOf(r, px.name)));
  const ys = xAxisFor(f.rows.map((r) => paramOf(r, py.name)));
  const cats = (a: AxisValues, p: Column) =>
    a.categories ??
    [...new Set(f.rows.map((r) => paramOf(r, p.name)))].sort((x, y) => compareCells(x, y)).map(valueText);
  const xCats = cats(xs, px);
  const yCats = cats(ys, py);
  const sums = new Map<string, { x: number; y: number; sum: number; n: number; names: string[] }>();
  for (const r of f.rows) {
    const cell = r.cells[metric.name] ?? null;
    const v = numericOrNull(cell);
    if (v === null) continue;
    const x = xCats.indexOf(valueText(paramOf(r, px.name)));
    const y = yCats.indexOf(valueText(paramOf(r, py.name)));
    const k = `${x},${y}`;
    const c = sums.get(k) ?? { x, y, sum: 0, n: 0, names: [] };
    // A group of replicates adds its values, so a cell's mean is over experiments, not over groups.
    c.sum += isStat(cell) ? cell.values.reduce((a, b) => a + b, 0) : v;
    c.n += isStat(cell) ? cell.n : 1;
    c.names.push(...(r.members ?? [r.experiment]).map((e) => e.name));
    sums.set(k, c);
  }
  const cells: HeatCell[] = [...sums.values()].map((c) => ({
    x: c.x,
    y: c.y,
    value: c.sum / c.n,
    title: `${px.name} = ${xCats[c.x]}, ${py.name} = ${yCats[c.y]}\n${metric.name} = ${displayCell(c.sum / c.n)}${c.n > 1 ? ` (mean of ${c.n})` : ''}\n${c.names.join('\n')}`,
  }));
  if (!cells.length) return '';
  const best = pickBest(cells, (c) => c.value, metric.goal);
  if (best) best.item.best = true;
  const svg = heatmapSvg(cells, {
    id,
    title: `${metric.name} (${metric.goal === 'max' ? 'higher' : 'lower'} is better)`,
    xLabel: px.name,
    yLabel: py.name,
    xCategories: xCats,
    yCategories: yCats,
    goal: metric.goal,
  });
  return `<figure class="heatmap-plot" id="${id}" data-metric="${escapeHtml(metric.name)}">${svg}</figure>`;
}

/** Metric plots and heat maps of every sweep; a note for what is not plotted. */
export function sweepPlots(t: Table, metric: MetricChoice | undefined): { html: string; count: number } {
  const families = sweepFamilies(t);
  if (!families.length) {
    const why = t.rows.length < 2 ? 'fewer than two experiments' : 'no param differs between the experiments';
    return { html: `<p class="note">No plots: ${escapeHtml(why)}.</p>`, count: 0 };
  }
  const out: string[] = [];
  let n = 0;
  families.forEach((f, k) => {
    const { varying, constant } = familyMetrics(t, f.rows);
    const names = f.params.map((p) => `<code>${escapeHtml(p.name)}</code>`).join(' × ');
    out.push(`<h3>Sweep of ${names} (${f.rows.length} experiments)</h3>`);
    const figures: string[] = [];
    if (f.params.length === 2) {
      const m =
        metric && varying.some((c) => c.name === metric.name)
          ? metric
          : varying[0] && { name: varying[0].name, goal: metric?.goal ?? ('max' as const) };
      if (m) figures.push(heatmap(f, m, `heatmap-${k + 1}`));
    }
    for (const p of f.params) for (const m of varying) figures.push(metricPlot(f, p, m, `plot-${++n}`, t));
    out.push(`<div class="plots">\n${figures.join('\n')}\n</div>`);
    if (!varying.length) out.push('<p class="note">No numeric metric differs between these experiments.</p>');
    if (constant.length)
      out.push(
        `<p class="note">Not plotted (same value in every experiment): ${constant.map((c) => `<code>${escapeHtml(c.name)}</code>`).join(', ')}.</p>`,
      );
  });
  return { html: out.join('\n'), count: n };
}

/** "margin=0.3, lr=0.001": the params that differ among `rows`, short names; the experiment name when none. */
export function legendLabels(t: Table, rows: Row[]): Map<Row, string> {
  const params = t.known.filter((c) => c.kind === 'param' && !same(rows, c.name));
  const names = params.map((c) => c.name);
  return new Map(
    rows.map((r) => [
      r,
      params.length
        ? params.map((c) => `${shortName(c.name, names)}=${valueText(r.cells[c.name] ?? null)}`).join(', ')
        : r.experiment.name,
    ]),
  );
}

/** Training curves per epoch (loss and its parts, validation figures), one plot per figure and stage. */
export function curvesSection(t: Table, training: Map<string, TrainingCurves[]>, isBest: (r: Row) => boolean): string {
  const withCurves = t.rows.filter((r) => training.get(r.experiment.name)?.length);
  if (!withCurves.length) return '<p class="note">No training curves (no stage output holds a training.json).</p>';
  const labels = legendLabels(t, withCurves);
  const stages = [...new Set(withCurves.flatMap((r) => training.get(r.experiment.name)!.map((c) => c.stage)))];
  const out: string[] = [];
  let n = 0;
  for (const stage of stages) {
    const curves = withCurves.flatMap((r) => {
      const c = training.get(r.experiment.name)!.find((x) => x.stage === stage);
      return c ? [{ r, c }] : [];
    });
    const figures = [...new Set(curves.flatMap(({ c }) => Object.keys(c.series)))];
    const constant: string[] = [];
    const plots: string[] = [];
    for (const fig of figures) {
      const values = new Set(curves.flatMap(({ c }) => (c.series[fig] ?? []).map((p) => p.value)));
      if (values.size < 2) {
        constant.push(fig);
        continue;
      }
      const series: PlotSeries[] = curves
        .filter(({ c }) => c.series[fig]?.length)
        .map(({ r, c }) => ({
          label: labels.get(r)!,
          title: `${r.experiment.name}: ${labels.get(r)}${c.bestEpoch !== undefined ? ` (best epoch ${c.bestEpoch})` : ''}`,
          points: c.series[fig].map((p) => ({
            x: p.epoch,
            y: p.value,
            title: `${r.experiment.name}\nepoch ${p.epoch}: ${fig} ${displayCell(p.value)}`,
          })),
          line: true,
          markers: c.series[fig].length <= 40,
          emphasis: isBest(r),
        }));
      const id = `curve-${++n}`;
      plots.push(
        `<figure class="curve-plot" id="${id}" data-stage="${escapeHtml(stage)}" data-figure="${escapeHtml(fig)}">${plotSvg(series, { id, title: `${stage}: ${fig}`, xLabel: 'epoch', yLabel: fig, xIntegers: true })}</figure>`,
      );
    }
    out.push(`<h3><code>${escapeHtml(stage)}</code> training</h3><div class="plots">\n${plots.join('\n')}\n</div>`);
    if (constant.length)
      out.push(
        `<p class="note">Not plotted (one value throughout): ${constant.map((c) => `<code>${escapeHtml(c)}</code>`).join(', ')}.</p>`,
      );
  }
  return out.join('\n');
}
