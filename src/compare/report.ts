// `facepipe report`: one self-contained HTML page (no external scripts, styles, fonts or images; a CSP that
// forbids loading any): the runs (date, git commit, dirty or not), the best experiment on the selected metric
// (highlighted), the experiment table, per-stage wall times, each metric against each swept param with a heat
// map for two-param sweeps, the training curves per epoch and the ROC curves of all experiments overlaid.
// Every name and value is escaped.
import { isStat, numberOf } from './aggregate.js';
import { defaultMetricOf, pickBest, type MetricChoice } from './best.js';
import type { ExperimentRecord, RocSeries, TrainingCurves } from './load.js';
import { curvesSection, legendLabels, sweepPlots } from './report-plots.js';
import { escapeHtml, plotSvg, type PlotSeries } from './svg.js';
import {
  cellOf,
  differs,
  displayCell,
  formatDate,
  formatSeconds,
  rowExperiments,
  type Row,
  type Table,
} from './table.js';

export { xAxisFor } from './report-plots.js';

export interface ReportInput {
  table: Table;
  /** Experiment name -> its ROC curves (test first), as loadRocs returns them. */
  rocs: Map<string, RocSeries[]>;
  /** Experiment name -> a roc.png of an experiment without ROC points, as a data: URI, with its path. */
  rocImages?: Map<string, { file: string; dataUri: string }>;
  /** Experiment name -> the training curves of its stages, as loadTraining returns them. */
  training?: Map<string, TrainingCurves[]>;
  /** What picks the best experiment and colours the heat maps (default: the first headline metric). */
  metric?: MetricChoice;
  /** Shown in the header (the workspace folder). */
  workspace: string;
  generatedAt: Date;
  title?: string;
}

const CSS = `
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#666;margin:0 0 12px}.note{color:#666}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #ddd;padding:3px 8px;white-space:nowrap;text-align:left}
th{background:#f0f0f0;cursor:pointer;user-select:none;position:sticky;top:0}
th.param.swept{background:#e6eefc}th.metric{background:#eaf6ea}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{background:#fff6d5}tr.best td:first-child::before{content:"\\2605  "}td.cached{color:#777}
.best-note{background:#fff6d5;border:1px solid #e8d48a;padding:6px 10px;display:inline-block}h3{font-size:15px;margin:18px 0 6px}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
.plots{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:4px}figcaption{font-size:12px;color:#555;max-width:400px;overflow-wrap:anywhere}
svg text{font:11px system-ui,sans-serif;fill:#333}svg .ttl,svg .leg-title{font-size:12px;font-weight:600}svg .axis{font-size:12px}
svg .grid{stroke:#eee}svg .frame{fill:none;stroke:#999}svg .diag{stroke:#aaa;stroke-dasharray:4 4}
details{margin:8px 0}code{background:#f0f0f0;padding:0 3px}
`;

// Click a header to sort by it (numbers numerically, empty cells last); click again to reverse.
const SORT_SCRIPT = `
(function(){
  var table=document.getElementById('experiments');if(!table)return;
  var ths=table.tHead.rows[0].cells,body=table.tBodies[0];
  function key(td){if(!td||td.textContent==='')return null;var n=td.getAttribute('data-n');return n!==null?Number(n):td.textContent;}
  function cmp(a,b){if(a===null||b===null)return a===b?0:(a===null?1:-1);if(typeof a==='number'&&typeof b==='number')return a-b;
    if(typeof a==='number')return -1;if(typeof b==='number')return 1;a=String(a);b=String(b);return a<b?-1:a>b?1:0;}
  Array.prototype.forEach.call(ths,function(th,i){th.addEventListener('click',function(){
    var desc=th.getAttribute('aria-sort')==='ascending';
    Array.prototype.forEach.call(ths,function(o){o.removeAttribute('aria-sort');});
    th.setAttribute('aria-sort',desc?'descending':'ascending');
    var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(x,y){var a=key(x.cells[i]),b=key(y.cells[i]);if(a===null||b===null)return cmp(a,b);var c=cmp(a,b);return desc?-c:c;});
    rows.forEach(function(r){body.appendChild(r);});
  });});
})();
`;

function tableHtml(t: Table, best: Row | undefined): string {
  const head = t.columns
    .map(
      (c) =>
        `<th scope="col" class="${c.kind}${c.swept ? ' swept' : ''}" title="${escapeHtml(c.kind === 'metric' ? 'metric' : c.swept ? 'swept param' : c.kind === 'param' ? 'param' : '')}">${escapeHtml(c.name)}</th>`,
    )
    .join('');
  const rows = t.rows
    .map(
      (r) =>
        (r === best
          ? `<tr class="best" title="best ${r.members ? 'group' : 'experiment'}">`
          : r.members
            ? '<tr class="group">'
            : '<tr>') +
        t.columns
          .map((c) => {
            const v = r.cells[c.name] ?? null;
            const text = displayCell(v, c);
            if (isStat(v)) {
              const values = v.values.map((x) => displayCell(x, c)).join(', ');
              return `<td class="num stat" data-n="${escapeHtml(String(v.mean))}" title="${escapeHtml(`mean ${v.mean}, std ${v.std ?? '-'}, n ${v.n}: ${values}`)}">${escapeHtml(text)}</td>`;
            }
            if (typeof v === 'number') {
              const exact = String(v);
              return `<td class="num" data-n="${escapeHtml(exact)}"${exact !== text ? ` title="${escapeHtml(exact)}"` : ''}>${escapeHtml(text)}</td>`;
            }
            // A halving point's standing: the whole reason on hover.
            const why = c.name === 'halving' && !r.members ? r.experiment.sweep?.why : undefined;
            return why ? `<td title="${escapeHtml(why)}">${escapeHtml(text)}</td>` : `<td>${escapeHtml(text)}</td>`;
          })
          .join('') +
        '</tr>',
    )
    .join('\n');
  return `<div class="scroll"><table id="experiments"><thead><tr>${head}</tr></thead>\n<tbody>\n${rows}\n</tbody></table></div>`;
}

/** Params with the same value in every shown experiment, listed under the table so the page tells the whole setup. */
function constantParamsHtml(t: Table): string {
  const shown = new Set(t.columns.map((c) => c.name));
  const exps = rowExperiments(t.rows);
  const constant = t.known.filter(
    (c) => c.kind === 'param' && !shown.has(c.name) && exps.length > 0 && !differs(exps, c),
  );
  if (!constant.length) return '';
  const items = constant
    .map(
      (c) =>
        `<li><code>${escapeHtml(c.name)}</code> = ${escapeHtml(displayCell(t.rows[0].cells[c.name] ?? null))}</li>`,
    )
    .join('\n');
  return `<details><summary>${constant.length} params equal in all experiments shown</summary><ul>\n${items}\n</ul></details>`;
}

/** At most `max` points of a curve, always keeping both ends (a polyline of thousands of points adds nothing). */
function thin(far: number[], tar: number[], max = 800): Array<{ x: number; y: number }> {
  const n = far.length;
  const step = Math.max(1, Math.ceil(n / max));
  const out: Array<{ x: number; y: number }> = [];
  for (let i = 0; i < n; i += step) out.push({ x: far[i], y: tar[i] });
  if ((n - 1) % step !== 0) out.push({ x: far[n - 1], y: tar[n - 1] });
  return out;
}

function auc(far: number[], tar: number[]): number {
  let a = 0;
  for (let i = 1; i < far.length; i++) a += ((far[i] - far[i - 1]) * (tar[i] + tar[i - 1])) / 2;
  return a;
}

/** Experiments with a ROC picture but no points: their pictures, inline (data: URIs). */
function rocImagesHtml(names: string[], images: Map<string, { file: string; dataUri: string }> | undefined): string {
  const shown = names.filter((n) => images?.has(n));
  if (!shown.length) return '';
  const figs = shown.map((n) => {
    const img = images!.get(n)!;
    return `<figure class="roc-image"><img alt="${escapeHtml(`ROC of ${n}`)}" src="${escapeHtml(img.dataUri)}" width="400"><figcaption>${escapeHtml(n)}: <code>${escapeHtml(img.file)}</code></figcaption></figure>`;
  });
  return `<p class="note">ROC pictures the stages drew (no points to overlay):</p><div class="plots">\n${figs.join('\n')}\n</div>`;
}

function rocSection(
  t: Table,
  rocs: Map<string, RocSeries[]>,
  images: Map<string, { file: string; dataUri: string }> | undefined,
  isBest: (r: Row) => boolean,
): string {
  const series: PlotSeries[] = [];
  const missing: string[] = [];
  for (const r of t.rows) {
    const curve = rocs.get(r.experiment.name)?.[0];
    if (!curve) {
      missing.push(r.experiment.name);
      continue;
    }
    const label = `${r.experiment.name} (AUC ${auc(curve.far, curve.tar).toFixed(3)})`;
    series.push({ label, points: thin(curve.far, curve.tar), line: true, markers: false, emphasis: isBest(r) });
  }
  const missingNote = missing.length
    ? `<p class="note">No ROC points for: ${missing.map((m) => `<code>${escapeHtml(m)}</code>`).join(', ')} (looked for roc.json, roc.csv or a "roc" entry in metrics.json in the stage output folders).</p>`
    : '';
  const pictures = rocImagesHtml(missing, images);
  if (!series.length) return `<p class="note">No ROC curves to show.</p>${missingNote}${pictures}`;
  const setName = rocs.get(t.rows.find((r) => rocs.get(r.experiment.name)?.length)!.experiment.name)![0].label;
  const plot = plotSvg(series, {
    id: 'roc',
    title: `ROC (${setName} pairs), one curve per experiment`,
    xLabel: 'false accept rate',
    yLabel: 'true accept rate',
    xDomain: [0, 1],
    yDomain: [0, 1],
    diagonal: true,
    width: 420,
    height: 380,
    className: 'roc',
  });
  // Face verification is judged at low FAR (TAR at FAR 1e-2, 1e-3): the same curves on a log FAR axis.
  const positiveFars = series.flatMap((s) => s.points.map((p) => p.x)).filter((x) => x > 0);
  const logPlot = positiveFars.length
    ? plotSvg(series, {
        id: 'roc-log',
        title: 'ROC, log false accept rate',
        xLabel: 'false accept rate (log)',
        yLabel: 'true accept rate',
        xScale: 'log',
        xDomain: [Math.max(1e-4, Math.min(...positiveFars)), 1],
        yDomain: [0, 1],
        width: 420,
        height: 380,
        className: 'roc',
      })
    : '';
  return `<div class="plots"><figure class="roc-plot" id="roc-figure">${plot}</figure>${logPlot ? `<figure class="roc-plot" id="roc-log-figure">${logPlot}</figure>` : ''}</div>${missingNote}${pictures}`;
}

/** The runs the shown experiments come from: id, date, git commit and whether the workspace was dirty. */
function runsHtml(t: Table): string {
  const runs = new Map<string, { e: ExperimentRecord; n: number }>();
  for (const r of t.rows) {
    const e = r.experiment;
    const k = e.lastRun || '(unknown)';
    const got = runs.get(k);
    if (got) got.n++;
    else runs.set(k, { e, n: 1 });
  }
  if (!runs.size) return '';
  const git = (e: ExperimentRecord) =>
    e.git === undefined
      ? 'commit not recorded'
      : e.git === null
        ? 'not in a git repository'
        : `commit <code>${escapeHtml(e.git.commit.slice(0, 12))}</code>${e.git.dirty ? ' <strong>with uncommitted changes</strong>' : ' (clean)'}`;
  const items = [...runs.entries()]
    .sort((a, b) => b[1].e.date.localeCompare(a[1].e.date))
    .map(
      ([id, { e, n }]) =>
        `<li class="run">run <code>${escapeHtml(id)}</code>${e.date ? `, ${escapeHtml(formatDate(e.date))}` : ''}, ${git(e)}: ${n} experiment${n === 1 ? '' : 's'}</li>`,
    );
  return `<ul class="runs meta">\n${items.join('\n')}\n</ul>`;
}

function bestHtml(best: { row: Row; value: number } | undefined, metric: MetricChoice | undefined, label: string) {
  if (!metric) return '<p class="note">No headline metric to pick a best experiment by (report --metric NAME).</p>';
  if (!best) return `<p class="note">No experiment has <code>${escapeHtml(metric.name)}</code>.</p>`;
  const cell = best.row.cells[metric.name];
  const name = best.row.members
    ? `${best.row.experiment.name} and ${best.row.members.length - 1} seed replicates`
    : best.row.experiment.name;
  const value = isStat(cell) ? displayCell(cell) : displayCell(best.value);
  return `<p class="best-note" id="best">Best by <code>${escapeHtml(metric.name)}</code> (${metric.goal === 'max' ? 'higher' : 'lower'} is better${best.row.members ? '; groups by their mean' : ''}): <strong>${escapeHtml(name)}</strong>${label && label !== best.row.experiment.name ? ` (${escapeHtml(label)})` : ''} = ${escapeHtml(value)}</p>`;
}

/** Per-stage wall times: how long computing each stage's outputs took (a cached stage: when they were made). */
function wallTimesHtml(t: Table): string {
  const stages = [...new Set(t.rows.flatMap((r) => Object.keys(r.experiment.stages)))];
  if (!t.rows.some((r) => Object.values(r.experiment.stages).some((s) => s.durationMs !== undefined)))
    return '<p class="note">No stage timings recorded.</p>';
  const head = `<tr><th scope="col">experiment</th>${stages.map((s) => `<th scope="col">${escapeHtml(s)}</th>`).join('')}<th scope="col">total</th></tr>`;
  const rows = t.rows.map((r) => {
    const cells = stages.map((name) => {
      const s = r.experiment.stages[name];
      if (!s || s.durationMs === undefined) return '<td class="num">-</td>';
      const cached = s.state === 'cached';
      const note = s.kept
        ? `kept from run ${s.kept.run} (the last run: ${s.kept.state})`
        : cached
          ? `cached in the last run; computed ${s.completedAt ?? ''}`
          : `computed ${s.completedAt ?? ''}`;
      return `<td class="num${cached ? ' cached' : ''}" data-n="${s.durationMs / 1000}" title="${escapeHtml(note)}">${escapeHtml(formatSeconds(s.durationMs / 1000))}${cached ? ' (cached)' : ''}${s.kept ? ' (kept)' : ''}</td>`;
    });
    const total = r.experiment.durationMs;
    return `<tr><td>${escapeHtml(r.experiment.name)}</td>${cells.join('')}<td class="num">${total === undefined ? '-' : escapeHtml(formatSeconds(total / 1000))}</td></tr>`;
  });
  return `<div class="scroll"><table id="wall-times"><thead>${head}</thead>\n<tbody>\n${rows.join('\n')}\n</tbody></table></div>
<p class="note">The time each stage took when its outputs were computed; "cached": the last run reused them.</p>`;
}

/** The table with one row per experiment (a group's members each), for the sections that show experiments. */
function perExperiment(t: Table): Table {
  if (!t.rows.some((r) => r.members)) return t;
  const rows = rowExperiments(t.rows).map((e) => ({
    experiment: e,
    cells: Object.fromEntries(t.known.map((c) => [c.name, cellOf(e, c)])),
  }));
  return { ...t, rows, aggregated: false };
}

/** "3 groups of seed replicates (9 experiments)": what the grouped rows stand for. */
function groupsNote(t: Table): string {
  const groups = t.rows.filter((r) => r.members);
  if (!groups.length) return '';
  const n = groups.reduce((a, r) => a + r.members!.length, 0);
  return `<p class="note" id="groups">${groups.length} row${groups.length === 1 ? '' : 's'} group${groups.length === 1 ? 's' : ''} ${n} seed replicates (experiments that differ only in <code>*.seed</code> params): metrics are mean ± standard deviation (n = experiments with the metric), plotted as the mean with an error bar of one standard deviation. <code>facepipe report --no-aggregate</code> shows every experiment.</p>`;
}

export function renderReport(input: ReportInput): string {
  const t = input.table;
  const flat = perExperiment(t);
  const title = input.title ?? 'facepipe experiments';
  const filtered = t.rows.length !== t.total ? ` (${t.total - t.rows.length} filtered out)` : '';
  const metric = input.metric ?? defaultMetricOf(t.rows.map((r) => r.experiment));
  // The best row: a group by its mean, so that one lucky seed does not win.
  const value = (r: Row) => numberOf(r.cells[metric!.name]) ?? r.experiment.metrics[metric!.name];
  const found = metric ? pickBest(t.rows, value, metric.goal) : undefined;
  const best = found && { row: found.item, value: found.value };
  const bestOf = (r: Row) => !!best && (best.row.members ?? [best.row.experiment]).includes(r.experiment);
  const plots = sweepPlots(t, metric);
  const label = best ? legendLabels(t, t.rows).get(best.row)! : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="meta">${flat.rows.length} experiment${flat.rows.length === 1 ? '' : 's'}${escapeHtml(filtered)} in <code>${escapeHtml(input.workspace)}</code>, generated ${escapeHtml(input.generatedAt.toISOString())}</p>
${runsHtml(flat)}
${t.rows.length ? bestHtml(best, metric, label) : ''}
<h2 id="table">Experiments</h2>
${t.rows.length ? tableHtml(t, best?.row) : '<p class="note">No experiments (run facepipe run first).</p>'}
${groupsNote(t)}
${constantParamsHtml(t)}
<h2 id="metrics">Metrics against swept params</h2>
${plots.html}
<h2 id="training">Training curves</h2>
${curvesSection(flat, input.training ?? new Map<string, TrainingCurves[]>(), bestOf)}
<h2 id="roc">ROC curves</h2>
${rocSection(flat, input.rocs, input.rocImages, bestOf)}
<h2 id="times">Wall time per stage</h2>
${wallTimesHtml(flat)}
<script>${SORT_SCRIPT}</script>
</body>
</html>
`;
}
