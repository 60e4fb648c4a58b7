import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  loadExperiments,
  loadRocImage,
  loadRocs,
  loadTraining,
  type RocSeries,
  type TrainingCurves,
} from '../../src/compare/load.js';
import { renderReport, xAxisFor } from '../../src/compare/report.js';
import { escapeHtml, heatmapSvg, logTicks, niceTicks, plotSvg, seriesStyles } from '../../src/compare/svg.js';
import { buildTable } from '../../src/compare/table.js';
import { probePage } from './chromium.js';
import {
  BASE,
  COMMIT,
  HOSTILE,
  HOSTILE_NAME,
  makeCompareWorkspace,
  MARGINS,
  RATES,
  type FixtureExperiment,
} from './fixture.js';
import { packageRoot } from '../../src/core/package-root.js';

function fixtureReport(filters: string[] = []): {
  html: string;
  rows: number;
  withRoc: number;
  images: number;
  grid: FixtureExperiment[];
} {
  const { root, grid } = makeCompareWorkspace();
  try {
    const table = buildTable(loadExperiments(root), { filters });
    const rocs = new Map<string, RocSeries[]>(table.rows.map((r) => [r.experiment.name, loadRocs(root, r.experiment)]));
    const training = new Map<string, TrainingCurves[]>(
      table.rows.map((r) => [r.experiment.name, loadTraining(root, r.experiment)]),
    );
    const rocImages = new Map(
      table.rows.flatMap((r) => {
        const i = rocs.get(r.experiment.name)!.length ? undefined : loadRocImage(root, r.experiment);
        return i ? [[r.experiment.name, i] as const] : [];
      }),
    );
    const html = renderReport({
      table,
      rocs,
      rocImages,
      training,
      workspace: `${root}/${HOSTILE}`,
      generatedAt: new Date('2026-11-27T00:00:00Z'),
    });
    return {
      html,
      rows: table.rows.length,
      withRoc: [...rocs.values()].filter((r) => r.length).length,
      images: rocImages.size,
      grid,
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('svg helpers: escaping, round ticks, log ticks, axis choice', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0.07, 0.53, 5), [0.1, 0.2, 0.3, 0.4, 0.5]);
  assert.deepEqual(niceTicks(-3, 1200, 4), [0, 500, 1000]);
  assert.deepEqual(logTicks(5e-5, 2e-2), [1e-4, 1e-3, 1e-2]);
  assert.equal(xAxisFor([1e-4, 1e-3, 1e-2]).scale, 'log');
  assert.equal(xAxisFor([0.1, 0.3]).scale, 'linear');
  // null is a value (margin: null is the soft margin): it gets a category of its own, never a gap.
  assert.deepEqual(xAxisFor([0.1, 0.3, null]).categories, ['0.1', '0.3', 'null']);
  const cat = xAxisFor(['b', 'a', true, 'b']);
  assert.equal(cat.scale, 'category');
  assert.deepEqual(cat.categories, ['true', 'a', 'b']);
  const svg = plotSvg(
    [
      {
        label: HOSTILE,
        points: [
          { x: 0, y: 0, title: HOSTILE },
          { x: 1, y: 1 },
        ],
        line: true,
      },
      { label: 'b', points: [{ x: 0.5, y: 0.2 }] },
    ],
    { title: HOSTILE, xLabel: HOSTILE, yLabel: 'y', id: 't' },
  );
  assert.ok(!svg.includes('<script'), 'no raw markup from labels');
  assert.equal((svg.match(/<circle /g) ?? []).length, 3);
  assert.equal((svg.match(/<polyline /g) ?? []).length, 1);
});

test('report: self-contained and every name, param and path escaped', () => {
  const { html, rows, withRoc, images } = fixtureReport();
  assert.equal(rows, MARGINS.length * RATES.length + 2);
  assert.equal(withRoc, MARGINS.length * RATES.length + 1, 'all but one grid point, the hostile one and the base');
  assert.equal(images, 1, 'the grid point without points has a roc.png');
  // The only <script> is the page's own sort script; the hostile strings appear only escaped.
  assert.equal((html.match(/<script/gi) ?? []).length, 1);
  assert.ok(!html.includes(HOSTILE) && !html.includes('<b>k</b>'), 'raw hostile text is not in the page');
  assert.ok(html.includes(escapeHtml(HOSTILE)), 'escaped param value present');
  assert.ok(html.includes(escapeHtml(HOSTILE_NAME)), 'escaped experiment name present');
  assert.ok(html.includes(escapeHtml(`triarchy.<b>k</b>"'&`)), 'escaped param key present');
  // Nothing is loaded from anywhere: no src/href but inline data: images, no @import or url(), a CSP that forbids it.
  assert.doesNotMatch(html, /\shref\s*=/i);
  assert.deepEqual(
    [...html.matchAll(/\ssrc\s*=\s*"([a-z]+:)/gi)].map((m) => m[1]),
    ['data:'],
  );
  assert.equal((html.match(/\ssrc\s*=/gi) ?? []).length, 1);
  assert.doesNotMatch(html, /@import|url\((?!#)/i);
  assert.doesNotMatch(html, /<link|<iframe|<object|<embed/i);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  // Filters apply to the report too.
  assert.equal(fixtureReport(['triarchy.loss.margin=0.5']).rows, RATES.length);
});

// The page probe of the Chromium test: what the rendered report shows (rows, plots, curves, ROC, sorting).
const PAGE_PROBE = `
    var q = function (s, root) { return Array.prototype.slice.call((root || document).querySelectorAll(s)); };
    var size = function (e) { var b = e.getBoundingClientRect(); return [b.width, b.height]; };
    var visible = function (e) { var s = size(e); return s[0] > 0 && s[1] > 0; };
    var headers = q('#experiments thead th').map(function (th) { return th.textContent; });
    var col = headers.indexOf('evaluate.auc');
    var aucColumn = function () { return q('#experiments tbody tr').map(function (tr) { return tr.cells[col].textContent; }); };
    var th = q('#experiments thead th')[col];
    th.click(); var asc = aucColumn();
    th.click(); var desc = aucColumn();
    var plot = function (f) {
      return {
        id: f.id, metric: f.getAttribute('data-metric'), param: f.getAttribute('data-param'),
        figure: f.getAttribute('data-figure'),
        series: q('g.series', f).length,
        drawn: q('g.series', f).filter(function (g) { return q('polyline, circle', g).some(visible); }).length,
        circles: q('circle', f).filter(visible).length,
        same: q('g.series[data-same-as]', f).length,
        dashedSame: q('g.series[data-same-as] polyline[stroke-dasharray]', f).length,
        emphasis: q('g.series.emphasis', f).length,
        legend: q('.legend-item text', f).map(function (t) { return t.lastChild.textContent; }),
      };
    };
    return {
      rows: q('#experiments tbody tr').length,
      headers: headers,
      svgs: q('svg').map(size),
      metricPlots: q('figure.metric-plot').map(plot),
      heat: q('figure.heatmap-plot').map(function (f) { return { cells: q('g.cell', f).length, best: q('g.cell.best', f).length, metric: f.getAttribute('data-metric') }; }),
      curves: q('figure.curve-plot').map(plot),
      notes: q('p.note').map(function (p) { return p.textContent; }),
      best: q('#experiments tr.best').map(function (tr) { return tr.cells[0].textContent; }),
      bestNote: (document.getElementById('best') || {}).textContent,
      runs: q('li.run').map(function (li) { return li.textContent; }),
      wall: q('#wall-times tbody tr').length,
      rocLines: q('#roc-figure polyline').map(function (p) { var b = p.getBBox(); return [b.width, b.height]; }),
      rocLogLines: q('#roc-log-figure polyline').length,
      rocLegend: q('#roc-figure .legend-item text').map(function (t) { return t.lastChild.textContent; }),
      scripts: q('script').length,
      images: q('img').map(function (i) { return [i.complete, i.naturalWidth]; }),
      hostileCells: q('#experiments td').filter(function (td) { return td.textContent.indexOf('alert(1)') >= 0; }).map(function (td) { return td.textContent; }),
      asc: asc, desc: desc,
      title: document.title,
    };`;

/** One plot as the page probe reads it. */
type Plot = {
  id: string;
  metric: string;
  param: string;
  figure: string;
  series: number;
  drawn: number;
  circles: number;
  same: number;
  dashedSame: number;
  emphasis: number;
  legend: string[];
};

/** What PAGE_PROBE returns. */
interface PageData {
  rows: number;
  headers: string[];
  svgs: Array<[number, number]>;
  metricPlots: Plot[];
  heat: Array<{ cells: number; best: number; metric: string }>;
  curves: Plot[];
  notes: string[];
  best: string[];
  bestNote: string;
  runs: string[];
  wall: number;
  rocLines: Array<[number, number]>;
  rocLogLines: number;
  rocLegend: string[];
  scripts: number;
  hostileCells: string[];
  images: Array<[boolean, number]>;
  asc: string[];
  desc: string[];
  title: string;
}

test('report: renders in headless Chromium (table, plots, heat map, curves, ROC) with no console errors', async () => {
  const { html, rows, grid } = fixtureReport();
  const r = await probePage(html, PAGE_PROBE);
  assert.deepEqual(r.errors, [], 'page errors');
  assert.deepEqual(r.consoleLines, [], 'console output');
  assert.equal(r.alerts, 0, 'no injected script ran');
  const d = r.data as PageData;
  assert.equal(d.rows, rows);
  assert.ok(d.headers.includes('triarchy.loss.margin') && d.headers.includes('triarchy.optimizer.learning_rate'));
  assert.ok(d.headers.includes('duration') && d.headers.includes('date'));
  // The sweep: the 6 grid points and the hostile one (same swept params); the base experiment is outside it.
  const swept = MARGINS.length * RATES.length + 1;
  // 2 swept params x the 3 headline metrics (auc, accuracy, eer); the constant and non-headline ones are not plotted.
  assert.equal(d.metricPlots.length, 2 * 3);
  for (const p of d.metricPlots) {
    assert.equal(p.circles, swept, `${p.id}: one visible point per experiment of the sweep`);
    assert.equal(p.drawn, p.series, `${p.id}: every series drawn`);
    // One series per value of the other swept param, named by it: never "-" or "null" (the base's margin).
    assert.equal(p.series, p.param === 'triarchy.loss.margin' ? RATES.length : MARGINS.length, p.id);
    assert.equal(p.legend.length, p.series);
    for (const l of p.legend) assert.ok(l !== '-' && !/null/.test(l), `${p.id} legend ${JSON.stringify(l)}`);
  }
  assert.deepEqual(d.heat, [{ cells: MARGINS.length * RATES.length, best: 1, metric: 'evaluate.auc' }]);
  // Training curves: 7 experiments have them (the grid and the base); center (always 0) and validation eer
  // (always 0.3) are constants, not plotted.
  const withCurves = MARGINS.length * RATES.length + 1;
  assert.deepEqual(
    d.curves.map((c) => c.figure),
    ['loss', 'identity', 'triplet', 'validation accuracy', 'validation auc'],
  );
  assert.ok(
    d.notes.some((n) => /one value throughout\): center, validation eer/.test(n)),
    d.notes.join('\n'),
  );
  for (const c of d.curves) {
    assert.equal(c.series, withCurves, `${c.figure}: one series per experiment with curves`);
    assert.equal(c.drawn, withCurves, `${c.figure}: every series drawn`);
    assert.equal(c.legend.length, withCurves);
    assert.equal(c.dashedSame, c.same, `${c.figure}: a repeated series is dashed over the first`);
    // The legend names each experiment's differing params.
    assert.ok(
      c.legend.every((l) => /margin=(0\.[135]|null), learning_rate=0\.0+1$/.test(l)),
      c.legend.join('; '),
    );
  }
  // Curves depend on the margin only: the second learning rate of each margin repeats the first; identity
  // depends on nothing, so all but one repeat it. Identical series stay visible (drawn, dashed).
  assert.equal(d.curves.find((c) => c.figure === 'loss')!.same, MARGINS.length);
  assert.equal(d.curves.find((c) => c.figure === 'identity')!.same, withCurves - 1);
  // The best experiment on the default metric (evaluate.auc, the first headline one) is highlighted.
  const best = grid.reduce((a, b) => (b.auc > a.auc ? b : a));
  assert.ok(best.auc > 0.7, 'the best grid point beats the base');
  assert.deepEqual(d.best, [best.name]);
  assert.match(d.bestNote, new RegExp(`Best by evaluate\\.auc \\(higher is better\\): ${best.name}`));
  assert.ok(
    d.curves.every((c) => c.emphasis === 1),
    'the best experiment is emphasised in every curve plot',
  );
  assert.equal(d.runs.length, 1);
  assert.match(d.runs[0], new RegExp(`commit ${COMMIT.slice(0, 12)} with uncommitted changes: ${rows} experiments`));
  assert.equal(d.wall, rows, 'wall times: one row per experiment');
  assert.equal(
    d.svgs.length,
    d.metricPlots.length + d.heat.length + d.curves.length + 2,
    'plots, heat map, curves, 2 ROC',
  );
  for (const [w, h] of d.svgs) assert.ok(w > 100 && h > 50, `svg size ${w}x${h}`);
  assert.equal(d.rocLines.length, MARGINS.length * RATES.length + 1, 'one ROC curve per experiment with points');
  for (const [w, h] of d.rocLines) assert.ok(w > 50 && h > 50, `ROC curve bbox ${w}x${h}`);
  assert.equal(d.rocLogLines, d.rocLines.length);
  assert.equal(d.rocLegend.length, d.rocLines.length);
  assert.ok(
    d.rocLegend.some((t) => t.startsWith('evil-<script>')),
    'hostile name shown as text in the legend',
  );
  assert.ok(
    d.rocLegend.some((t) => t.startsWith(`★ ${best.name}`)),
    'the best ROC curve marked',
  );
  assert.deepEqual(d.images, [[true, 1]], 'the inline ROC picture loaded');
  assert.equal(d.scripts, 3, "the page's sort script plus the two probe scripts");
  assert.ok(d.hostileCells.includes(HOSTILE), 'hostile value shown verbatim as text');
  assert.ok(d.hostileCells.includes(HOSTILE_NAME));
  const nums = (a: string[]) => a.map(Number);
  assert.deepEqual(
    nums(d.asc),
    [...nums(d.asc)].sort((a, b) => a - b),
    'header click sorts ascending',
  );
  assert.deepEqual(nums(d.desc), [...nums(d.asc)].reverse(), 'second click sorts descending');
  assert.equal(d.title, 'facepipe experiments');
  assert.ok(r.ms < 20000, `took ${r.ms} ms`);
});

test('svg: identical series are dashed over the first in their own colours; heat map cells and best cell', () => {
  const pts = [
    { x: 1, y: 1 },
    { x: 2, y: 3 },
  ];
  const styles = seriesStyles([
    { label: 'a', points: pts },
    { label: 'b', points: [{ x: 1, y: 2 }] },
    { label: 'c', points: pts },
    { label: 'd', points: pts },
  ]);
  assert.deepEqual(
    styles.map((s) => [s.dash, s.offset, s.sameAs]),
    [
      ['', 0, undefined],
      ['', 0, undefined],
      ['6 12', -6, 0],
      ['6 12', -12, 0],
    ],
    'three identical: solid, then dash slots 1 and 2 of a 3-slot pattern, so slot 0 shows the first',
  );
  assert.equal(new Set(styles.map((s) => s.color)).size, 4);
  const svg = heatmapSvg(
    [
      { x: 0, y: 0, value: 0.5 },
      { x: 1, y: 0, value: 0.9, best: true },
    ],
    { title: 't', xLabel: 'x', yLabel: 'y', xCategories: ['a', HOSTILE], yCategories: ['r'] },
  );
  assert.equal((svg.match(/<g class="cell/g) ?? []).length, 2);
  assert.equal((svg.match(/<g class="cell best"/g) ?? []).length, 1);
  assert.ok(!svg.includes('<script'));
});

const repoRoot = packageRoot;

test('cli: facepipe exps and facepipe report on a workspace', () => {
  const { root, grid } = makeCompareWorkspace();
  try {
    // The compiled CLI under npm test; the TypeScript source through tsx when the tests run with tsx.
    const compiled = fileURLToPath(import.meta.url).includes(`${join('dist', 'test')}`);
    const base = repoRoot();
    const cli = compiled
      ? [join(base, 'dist', 'src', 'cli', 'main.js')]
      : ['--import', import.meta.resolve('tsx'), join(base, 'src', 'cli', 'main.ts')];
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [...cli, ...args], {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, FACEPIPE_DEBUG: '' },
      });

    const json = run(
      'exps',
      '--json',
      '--sort',
      'evaluate.auc',
      '--desc',
      '--filter',
      'triarchy.optimizer.learning_rate<0.0005',
    );
    assert.equal(json.status, 0, json.stderr);
    const rows = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    assert.equal(rows.length, MARGINS.length + 2, 'the grid points, the hostile one and the base at the low rate');
    assert.deepEqual(
      rows.map((r) => r['evaluate.auc']),
      [...rows.map((r) => r['evaluate.auc'] as number)].sort((a, b) => b - a),
    );

    const text = run('exps');
    assert.equal(text.status, 0, text.stderr);
    const lines = text.stdout.trimEnd().split('\n');
    for (const l of lines) assert.ok(l.length <= 120, `fits 120 columns: ${l.length}: ${l}`);
    const header = lines[0].split(/\s+/);
    for (const h of ['experiment', 'status', 'margin', 'learning_rate', 'auc', 'accuracy', 'eer'])
      assert.ok(header.includes(h), `default column ${h}: ${lines[0]}`);
    // Constants (split.seed, evaluate.params), backends and the pipeline only with --all.
    for (const h of ['seed', 'params', 'backend', 'pipeline', 'evaluate.params'])
      assert.ok(!header.includes(h), `no ${h} column by default: ${lines[0]}`);
    const names = [...grid.map((g) => g.name), BASE];
    assert.equal(lines.filter((l) => names.some((n) => l.startsWith(n + ' '))).length, names.length);
    const wide = run('exps', '--all');
    const wideHeader = wide.stdout.split('\n')[0].split(/\s+/);
    for (const h of ['pipeline', 'backend', 'seed', 'validation_identities'])
      assert.ok(wideHeader.includes(h), `--all shows ${h}: ${wideHeader.join(' ')}`);
    assert.equal(wideHeader.filter((h) => h === 'params' || h.endsWith('.params')).length, 1, 'one params column');
    const narrow = run('exps', '--width', '80');
    assert.ok(
      narrow.stdout.split('\n').every((l) => l.length <= 80 || /more column/.test(l)),
      narrow.stdout,
    );
    assert.match(narrow.stdout, /more columns? to fit the width \(.*\): --all, --columns or --width/);

    const diff = run('exps', 'diff', grid[0].name, grid[1].name.slice(-6));
    assert.equal(diff.status, 0, diff.stderr);
    assert.match(diff.stdout, /^param\s+face-verification-\S+\s+face-verification-\S+\s+change$/m);
    assert.match(diff.stdout, /^triarchy\.optimizer\.learning_rate\s+0\.0001\s+0\.001\s+\+0\.0009$/m);
    assert.match(diff.stdout, /^evaluate\.auc\s+[\d.]+\s+[\d.]+\s+[+-][\d.]+$/m);
    assert.doesNotMatch(diff.stdout, /triarchy\.epochs|backend/, 'equal params and backends only with --all');
    assert.match(run('exps', 'diff', grid[0].name, grid[1].name, '--all').stdout, /^triarchy\.epochs\s+3\s+3\s+0$/m);
    const unknown = run('exps', 'diff', grid[0].name, 'nope');
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /no experiment "nope"/);

    const apply = run('exps', 'apply', grid[2].name);
    assert.equal(apply.status, 0, apply.stderr);
    assert.match(apply.stdout, new RegExp(`wrote configs/${grid[2].name}\\.yaml`));
    const again = run('exps', 'apply', grid[2].name);
    assert.equal(again.status, 2, 'an existing file is not replaced without --force');
    assert.match(again.stderr, /exists; nothing was written/);
    assert.equal(run('exps', 'apply', grid[2].name, '--force').status, 0);

    const bad = run('exps', '--sort', 'evaluate.acc');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown column "evaluate\.acc"/);
    assert.match(bad.stderr, /known columns: experiment, .*evaluate\.accuracy/);

    const csv = run('exps', '--csv', '--filter', 'experiment~evil');
    assert.equal(csv.status, 0, csv.stderr);
    assert.ok(csv.stdout.includes(`"${HOSTILE_NAME.replace(/"/g, '""')}"`), csv.stdout);

    const rep = run('report', '--out', 'out/r.html');
    assert.equal(rep.status, 0, rep.stderr);
    assert.match(
      rep.stdout,
      /wrote out\/r\.html \(8 experiments, 7 with ROC curves, 1 with a ROC picture only, 7 with training curves\)/,
    );
    assert.match(readFileSync(join(root, 'out', 'r.html'), 'utf8'), /<table id="experiments">/);
    assert.equal(run('report').status, 0);
    assert.ok(existsSync(join(root, 'results', 'report.html')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
