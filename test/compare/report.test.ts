import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadExperiments, loadRocImage, loadRocs, type RocSeries } from '../../src/compare/load.js';
import { renderReport, xAxisFor } from '../../src/compare/report.js';
import { escapeHtml, logTicks, niceTicks, plotSvg } from '../../src/compare/svg.js';
import { buildTable } from '../../src/compare/table.js';
import { probePage } from './chromium.js';
import { HOSTILE, HOSTILE_NAME, makeCompareWorkspace, MARGINS, RATES } from './fixture.js';
import { packageRoot } from '../../src/core/package-root.js';

function fixtureReport(filters: string[] = []): { html: string; rows: number; withRoc: number; images: number } {
  const { root } = makeCompareWorkspace();
  try {
    const table = buildTable(loadExperiments(root), { filters });
    const rocs = new Map<string, RocSeries[]>(table.rows.map((r) => [r.experiment.name, loadRocs(root, r.experiment)]));
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
      workspace: `${root}/${HOSTILE}`,
      generatedAt: new Date('2026-11-27T00:00:00Z'),
    });
    return {
      html,
      rows: table.rows.length,
      withRoc: [...rocs.values()].filter((r) => r.length).length,
      images: rocImages.size,
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
  assert.equal(xAxisFor([0.1, 0.3, null]).scale, 'linear');
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
  assert.equal(rows, MARGINS.length * RATES.length + 1);
  assert.equal(withRoc, MARGINS.length * RATES.length, 'all but one grid point, plus the hostile one, have ROC points');
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

test('report: renders in headless Chromium (table, plots, ROC curves) with no console errors', async () => {
  const { html, rows } = fixtureReport();
  const r = await probePage(
    html,
    `
    var q = function (s) { return Array.prototype.slice.call(document.querySelectorAll(s)); };
    var size = function (e) { var b = e.getBoundingClientRect(); return [b.width, b.height]; };
    var headers = q('#experiments thead th').map(function (th) { return th.textContent; });
    var col = headers.indexOf('evaluate.auc');
    var aucColumn = function () { return q('#experiments tbody tr').map(function (tr) { return tr.cells[col].textContent; }); };
    var th = q('#experiments thead th')[col];
    th.click(); var asc = aucColumn();
    th.click(); var desc = aucColumn();
    return {
      rows: q('#experiments tbody tr').length,
      headers: headers,
      svgs: q('svg').map(size),
      metricPlots: q('figure.metric-plot svg').length,
      metricCircles: q('figure.metric-plot circle').filter(function (c) { var s = size(c); return s[0] > 0 && s[1] > 0; }).length,
      metricLines: q('figure.metric-plot polyline').length,
      rocLines: q('#roc-figure polyline').map(function (p) { var b = p.getBBox(); return [b.width, b.height]; }),
      rocLogLines: q('#roc-log-figure polyline').length,
      rocLegend: q('#roc-figure .legend-item text').map(function (t) { return t.lastChild.textContent; }),
      scripts: q('script').length,
      images: q('img').map(function (i) { return [i.complete, i.naturalWidth]; }),
      hostileCells: q('#experiments td').filter(function (td) { return td.textContent.indexOf('alert(1)') >= 0; }).map(function (td) { return td.textContent; }),
      asc: asc, desc: desc,
      title: document.title,
    };`,
  );
  assert.deepEqual(r.errors, [], 'page errors');
  assert.deepEqual(r.consoleLines, [], 'console output');
  assert.equal(r.alerts, 0, 'no injected script ran');
  const d = r.data as {
    rows: number;
    headers: string[];
    svgs: Array<[number, number]>;
    metricPlots: number;
    metricCircles: number;
    metricLines: number;
    rocLines: Array<[number, number]>;
    rocLogLines: number;
    rocLegend: string[];
    scripts: number;
    hostileCells: string[];
    images: Array<[boolean, number]>;
    asc: string[];
    desc: string[];
    title: string;
  };
  assert.equal(d.rows, rows);
  assert.ok(d.headers.includes('triarchy.loss.margin') && d.headers.includes('triarchy.optimizer.learning_rate'));
  // 2 swept params x 4 varying numeric metrics (auc, eer, accuracy, final_loss); constant and text metrics are not plotted.
  assert.equal(d.metricPlots, 2 * 4);
  assert.equal(d.metricCircles, 2 * 4 * rows, 'one visible point per experiment in each plot');
  assert.ok(d.metricLines >= 2 * 4, 'series lines drawn');
  assert.equal(d.svgs.length, d.metricPlots + 2, 'metric plots, ROC, ROC with log FAR');
  for (const [w, h] of d.svgs) assert.ok(w > 100 && h > 100, `svg size ${w}x${h}`);
  assert.equal(d.rocLines.length, MARGINS.length * RATES.length, 'one ROC curve per experiment with points');
  for (const [w, h] of d.rocLines) assert.ok(w > 50 && h > 50, `ROC curve bbox ${w}x${h}`);
  assert.equal(d.rocLogLines, d.rocLines.length);
  assert.equal(d.rocLegend.length, d.rocLines.length);
  assert.ok(
    d.rocLegend.some((t) => t.startsWith('evil-<script>')),
    'hostile name shown as text in the legend',
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
    assert.equal(rows.length, MARGINS.length + 1);
    assert.deepEqual(
      rows.map((r) => r['evaluate.auc']),
      [...rows.map((r) => r['evaluate.auc'] as number)].sort((a, b) => b - a),
    );

    const text = run('exps');
    assert.equal(text.status, 0, text.stderr);
    assert.equal(text.stdout.trimEnd().split('\n').length, 2 + grid.length + 1);

    const bad = run('exps', '--sort', 'evaluate.acc');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown column "evaluate\.acc"/);
    assert.match(bad.stderr, /known columns: experiment, .*evaluate\.accuracy/);

    const csv = run('exps', '--csv', '--filter', 'experiment~evil');
    assert.equal(csv.status, 0, csv.stderr);
    assert.ok(csv.stdout.includes(`"${HOSTILE_NAME.replace(/"/g, '""')}"`), csv.stdout);

    const rep = run('report', '--out', 'out/r.html');
    assert.equal(rep.status, 0, rep.stderr);
    assert.match(rep.stdout, /wrote out\/r\.html \(7 experiments, 6 with ROC curves, 1 with a ROC picture only\)/);
    assert.match(readFileSync(join(root, 'out', 'r.html'), 'utf8'), /<table id="experiments">/);
    assert.equal(run('report').status, 0);
    assert.ok(existsSync(join(root, 'results', 'report.html')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
