// `facepipe report`: one self-contained HTML page (no external scripts, styles, fonts or images; a CSP that
// forbids loading any) holding the experiment table, each metric plotted against each swept param, and the
// ROC curves of all experiments overlaid. Every name and value is escaped.
import { compareCells, differs, displayCell, type Column, type Table } from './table.js';
import { escapeHtml, plotSvg, type PlotSeries } from './svg.js';
import type { CellValue, RocSeries } from './load.js';

export interface ReportInput {
  table: Table;
  /** Experiment name -> its ROC curves (test first), as loadRocs returns them. */
  rocs: Map<string, RocSeries[]>;
  /** Experiment name -> a roc.png of an experiment without ROC points, as a data: URI, with its path. */
  rocImages?: Map<string, { file: string; dataUri: string }>;
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

function numericOrNull(v: CellValue): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function tableHtml(t: Table): string {
  const head = t.columns
    .map(
      (c) =>
        `<th scope="col" class="${c.kind}${c.swept ? ' swept' : ''}" title="${escapeHtml(c.kind === 'metric' ? 'metric' : c.swept ? 'swept param' : c.kind === 'param' ? 'param' : '')}">${escapeHtml(c.name)}</th>`,
    )
    .join('');
  const rows = t.rows
    .map(
      (r) =>
        '<tr>' +
        t.columns
          .map((c) => {
            const v = r.cells[c.name] ?? null;
            const text = displayCell(v);
            if (typeof v === 'number') {
              const exact = String(v);
              return `<td class="num" data-n="${escapeHtml(exact)}"${exact !== text ? ` title="${escapeHtml(exact)}"` : ''}>${escapeHtml(text)}</td>`;
            }
            return `<td>${escapeHtml(text)}</td>`;
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
  const exps = t.rows.map((r) => r.experiment);
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

interface AxisValues {
  scale: 'linear' | 'log' | 'category';
  categories?: string[];
  x: (v: CellValue) => number | undefined;
}

/** How to place a param's values on an x axis: numbers linearly (log when all positive over 2+ decades), else as categories. */
export function xAxisFor(values: CellValue[]): AxisValues {
  const present = values.filter((v): v is Exclude<CellValue, null> => v !== null);
  if (present.length && present.every((v) => typeof v === 'number')) {
    const nums = present;
    const lo = Math.min(...nums);
    const hi = Math.max(...nums);
    const log = lo > 0 && hi / lo >= 100;
    return { scale: log ? 'log' : 'linear', x: (v) => (typeof v === 'number' ? v : undefined) };
  }
  const cats = [...new Set(present.map((v) => String(v)))];
  const order = new Map(present.map((v) => [String(v), v] as const));
  cats.sort((a, b) => compareCells(order.get(a)!, order.get(b)!));
  return { scale: 'category', categories: cats, x: (v) => (v === null ? undefined : cats.indexOf(String(v))) };
}

/** The shortest dotted suffix of `name` that no other column in `among` ends with (margin for triarchy.loss.margin). */
function shortName(name: string, among: Column[]): string {
  const parts = name.split('.');
  for (let k = 1; k < parts.length; k++) {
    const suffix = parts.slice(-k).join('.');
    if (!among.some((c) => c.name !== name && (c.name === suffix || c.name.endsWith('.' + suffix)))) return suffix;
  }
  return name;
}

/** Legend order: numbers in labels compare numerically (margin=0.1 before margin=0.3). */
function compareLabels(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (a !== '' && b !== '' && Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return a.localeCompare(b, 'en', { numeric: true });
}

function metricPlots(t: Table): { html: string; count: number } {
  const exps = t.rows.map((r) => r.experiment);
  const isPlottableParam = (c: Column) => c.kind === 'param' && differs(exps, c);
  let params = t.known.filter((c) => c.swept && isPlottableParam(c));
  if (!params.length) params = t.columns.filter(isPlottableParam);
  const metrics = t.columns.filter(
    (c) => c.kind === 'metric' && t.rows.some((r) => numericOrNull(r.cells[c.name] ?? null) !== null),
  );
  const varying = metrics.filter((c) => differs(exps, c));
  const constant = metrics.filter((c) => !differs(exps, c));
  if (!params.length || !varying.length) {
    const why =
      t.rows.length < 2
        ? 'fewer than two experiments'
        : !params.length
          ? 'no param differs between the experiments'
          : 'no numeric metric differs between the experiments';
    return { html: `<p class="note">No plots: ${escapeHtml(why)}.</p>`, count: 0 };
  }
  const figures: string[] = [];
  let n = 0;
  for (const p of params) {
    const axis = xAxisFor(t.rows.map((r) => r.cells[p.name] ?? null));
    const others = params.filter((o) => o !== p);
    for (const m of varying) {
      // One series per combination of the other swept params, so a grid sweep reads as a family of lines.
      const groups = new Map<string, { label: string; points: Array<{ x: number; y: number; title: string }> }>();
      for (const r of t.rows) {
        const x = axis.x(r.cells[p.name] ?? null);
        const y = numericOrNull(r.cells[m.name] ?? null);
        if (x === undefined || y === null) continue;
        // With one other param the legend title names it and entries are its values; with more, short name=value pairs.
        const label =
          others.length === 1
            ? displayCell(r.cells[others[0].name] ?? null)
            : others.map((o) => `${shortName(o.name, others)}=${displayCell(r.cells[o.name] ?? null)}`).join(', ');
        let g = groups.get(label);
        if (!g) groups.set(label, (g = { label, points: [] }));
        g.points.push({
          x,
          y,
          title: `${r.experiment.name}\n${p.name} = ${displayCell(r.cells[p.name] ?? null)}\n${m.name} = ${displayCell(y)}`,
        });
      }
      const grouped = groups.size > 1 && groups.size <= 10;
      const series: PlotSeries[] = grouped
        ? [...groups.values()]
            .sort((a, b) => compareLabels(a.label, b.label))
            .map((g) => ({ label: g.label, points: g.points, line: 'mean' as const }))
        : [
            {
              label: '',
              points: [...groups.values()].flatMap((g) => g.points),
              line: groups.size <= 1 ? ('mean' as const) : false,
            },
          ];
      const id = `plot-${++n}`;
      figures.push(
        `<figure class="metric-plot" id="${id}">${plotSvg(series, {
          id,
          title: `${m.name} vs ${p.name}`,
          xLabel: p.name,
          yLabel: m.name,
          xScale: axis.scale,
          categories: axis.categories,
          legendTitle:
            grouped && others.length === 1
              ? shortName(
                  others[0].name,
                  t.known.filter((c) => c.kind === 'param'),
                )
              : undefined,
        })}</figure>`,
      );
    }
  }
  const skipped = constant.length
    ? `<p class="note">Not plotted (same value in every experiment): ${constant.map((c) => `<code>${escapeHtml(c.name)}</code>`).join(', ')}.</p>`
    : '';
  return { html: `<div class="plots">\n${figures.join('\n')}\n</div>${skipped}`, count: n };
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
  images?: Map<string, { file: string; dataUri: string }>,
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
    series.push({ label, points: thin(curve.far, curve.tar), line: true, markers: false });
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

export function renderReport(input: ReportInput): string {
  const t = input.table;
  const title = input.title ?? 'facepipe experiments';
  const filtered = t.rows.length !== t.total ? ` (${t.total - t.rows.length} filtered out)` : '';
  const plots = metricPlots(t);
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
<p class="meta">${t.rows.length} experiment${t.rows.length === 1 ? '' : 's'}${escapeHtml(filtered)} in <code>${escapeHtml(input.workspace)}</code>, generated ${escapeHtml(input.generatedAt.toISOString())}</p>
<h2 id="table">Experiments</h2>
${t.rows.length ? tableHtml(t) : '<p class="note">No experiments (run facepipe run first).</p>'}
${constantParamsHtml(t)}
<h2 id="metrics">Metrics against swept params</h2>
${plots.html}
<h2 id="roc">ROC curves</h2>
${rocSection(t, input.rocs, input.rocImages)}
<script>${SORT_SCRIPT}</script>
</body>
</html>
`;
}
