import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import {
  loadExperiments,
  loadRocs,
  loadTraining,
  type RocSeries,
  type TrainingCurves,
} from '../../src/compare/load.js';
import { renderReport } from '../../src/compare/report.js';
import { buildTable, rowExperiments } from '../../src/compare/table.js';
import { probePage } from './chromium.js';
import { makeSeedWorkspace, SEED_AUC, SEED_MARGINS, SEEDS } from './fixture.js';

function seedReport(aggregate: boolean): { html: string; names: Record<number, string[]> } {
  const { root, names } = makeSeedWorkspace();
  try {
    const table = buildTable(loadExperiments(root), { aggregate });
    const exps = rowExperiments(table.rows);
    const rocs = new Map<string, RocSeries[]>(exps.map((e) => [e.name, loadRocs(root, e)]));
    const training = new Map<string, TrainingCurves[]>(exps.map((e) => [e.name, loadTraining(root, e)]));
    const html = renderReport({
      table,
      rocs,
      training,
      workspace: root,
      generatedAt: new Date('2026-12-01T00:00:00Z'),
    });
    return { html, names };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const MEASURE = `
  var q = function (s, root) { return Array.prototype.slice.call((root || document).querySelectorAll(s)); };
  var visible = function (e) { var b = e.getBoundingClientRect(); return b.width > 0 || b.height > 0; };
  var auc = q('figure.metric-plot').filter(function (f) {
    return f.getAttribute('data-metric') === 'evaluate.auc' && f.getAttribute('data-param') === 'triarchy.loss.margin';
  })[0];
  return {
    rows: q('#experiments tbody tr').length,
    groups: q('#experiments tbody tr.group').length + q('#experiments tbody tr.best[title="best group"]').length,
    best: q('#experiments tr.best').map(function (tr) { return tr.cells[0].textContent; }),
    bestNote: (document.getElementById('best') || {}).textContent,
    groupsNote: (document.getElementById('groups') || {}).textContent || '',
    plots: q('figure.metric-plot').map(function (f) { return f.getAttribute('data-param'); }),
    points: auc ? q('circle', auc).filter(visible).map(function (c) { return [Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))]; }) : [],
    bars: auc ? q('path.errorbar', auc).filter(visible).map(function (p) {
      var b = p.getBBox(); return { x: b.x + b.width / 2, top: b.y, bottom: b.y + b.height, title: p.textContent };
    }) : [],
    curves: q('figure.curve-plot').length ? q('g.series', q('figure.curve-plot')[0]).length : 0,
    rocLines: q('#roc-figure polyline').length,
    wall: q('#wall-times tbody tr').length,
    statCells: q('#experiments td.stat').map(function (td) { return td.textContent; }),
  };`;

type Measured = {
  rows: number;
  groups: number;
  best: string[];
  bestNote: string;
  groupsNote: string;
  plots: string[];
  points: Array<[number, number]>;
  bars: Array<{ x: number; top: number; bottom: number; title: string }>;
  curves: number;
  rocLines: number;
  wall: number;
  statCells: string[];
};

test('report: seed replicates are one row and one point each, with error bars (headless Chromium)', async () => {
  const { html, names } = seedReport(true);
  const r = await probePage(html, MEASURE);
  assert.deepEqual(r.errors, [], 'page errors');
  assert.deepEqual(r.consoleLines, [], 'console output');
  const d = r.data as Measured;
  const all = SEED_MARGINS.length * SEEDS.length + 1;
  assert.equal(d.rows, SEED_MARGINS.length + 1, 'one row per group and the lone experiment');
  assert.equal(d.groups, SEED_MARGINS.length);
  assert.ok(
    d.statCells.some((c) => c === '0.870 ± 0.010 (n=3)'),
    d.statCells.join(' | '),
  );
  // The best group by its mean (margin 0.5), not the group holding the best single seed (margin 0.3, 0.95).
  assert.deepEqual(d.best, [`${names[0.5][0]} +2`]);
  assert.match(d.bestNote, /groups by their mean\): .* and 2 seed replicates .*= 0\.870 ± 0\.010 \(n=3\)/);
  assert.match(d.groupsNote, /3 rows group 9 seed replicates/);
  // Seeds are not plotted as params: the metric plots are against the margin only.
  assert.ok(d.plots.length > 0 && d.plots.every((p) => p === 'triarchy.loss.margin'), d.plots.join());
  // One point per row on the margin axis, an error bar through each group's point, longer where seeds disagree.
  assert.equal(d.points.length, SEED_MARGINS.length + 1);
  assert.equal(d.bars.length, SEED_MARGINS.length);
  for (const b of d.bars) {
    const p = d.points.find(([x]) => Math.abs(x - b.x) < 1)!;
    assert.ok(p, `a point under the bar at x ${b.x}`);
    assert.ok(b.top < p[1] && p[1] < b.bottom, 'the bar spans the mean');
  }
  const len = (b: { top: number; bottom: number }) => b.bottom - b.top;
  const bar03 = d.bars.find((b) => /margin = 0\.3/.test(b.title))!;
  const bar05 = d.bars.find((b) => /margin = 0\.5/.test(b.title))!;
  assert.ok(len(bar03) > 5 * len(bar05), `std ${len(bar03)} vs ${len(bar05)} px`);
  assert.match(bar03.title, new RegExp(names[0.3].join('\\n')), 'the tooltip names the members');
  // The sections about experiments show every member.
  assert.equal(d.curves, all, 'a training curve per experiment');
  assert.equal(d.rocLines, all, 'a ROC curve per experiment');
  assert.equal(d.wall, all, 'wall times per experiment');
  assert.ok(SEED_AUC[0.3][2] > SEED_AUC[0.5][2]);
});

test('report --no-aggregate: a row and a point per experiment, no error bars', async () => {
  const { html } = seedReport(false);
  const r = await probePage(html, MEASURE);
  assert.deepEqual(r.errors, [], 'page errors');
  const d = r.data as Measured;
  const all = SEED_MARGINS.length * SEEDS.length + 1;
  assert.equal(d.rows, all);
  assert.equal(d.groups, 0);
  assert.equal(d.bars.length, 0);
  assert.equal(d.points.length, all);
  assert.equal(d.groupsNote, '');
});
