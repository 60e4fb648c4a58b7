import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { aggregateCell, isSeedParam, isStat, replicateGroups, statOf, type Stat } from '../../src/compare/aggregate.js';
import { loadExperiments, type ExperimentRecord } from '../../src/compare/load.js';
import {
  buildTable,
  displayCell,
  fitColumns,
  formatCsv,
  formatJson,
  formatStat,
  formatText,
  type Row,
} from '../../src/compare/table.js';
import { makeSeedWorkspace, SEED_AUC, SEED_MARGINS, SEEDS } from './fixture.js';

function withSeeds<T>(f: (exps: ExperimentRecord[], names: Record<number, string[]>) => T): T {
  const { root, names } = makeSeedWorkspace();
  try {
    return f(loadExperiments(root), names);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
const std = (a: number[]) => Math.sqrt(a.reduce((x, v) => x + (v - mean(a)) ** 2, 0) / (a.length - 1));
const rowOf = (rows: Row[], margin: number) => rows.find((r) => r.cells['triarchy.loss.margin'] === margin)!;

test('seed params: seed and *.seed only', () => {
  assert.ok(isSeedParam('triarchy.seed') && isSeedParam('split.seed') && isSeedParam('seed'));
  assert.ok(isSeedParam('a.b.seed'));
  assert.ok(!isSeedParam('triarchy.seeds') && !isSeedParam('triarchy.seed_offset') && !isSeedParam('split.sweepseed'));
});

test('statOf: mean, sample std (n - 1), none below two values', () => {
  const s = statOf([0.8, 0.81, 0.82]);
  assert.ok(Math.abs(s.mean - 0.81) < 1e-12);
  assert.ok(Math.abs(s.std! - 0.01) < 1e-12);
  assert.equal(s.n, 3);
  assert.equal(statOf([0.5]).std, null);
  assert.equal(statOf([2, 2]).std, 0);
});

test("formatStat: the mean to the std's first two significant digits, and n", () => {
  const f = (values: number[]) => formatStat(statOf(values));
  assert.equal(f([0.8, 0.81, 0.82]), '0.810 ± 0.010 (n=3)');
  assert.equal(f([0.871234, 0.9, 0.84]), '0.870 ± 0.030 (n=3)');
  assert.equal(f([120, 135, 110]), '122 ± 13 (n=3)');
  assert.equal(f([0.7, 0.7]), '0.7 ± 0 (n=2)');
  assert.equal(f([0.7]), '0.7 (n=1)');
  assert.equal(formatStat(statOf([60, 70]), { format: 'duration' }), '1m05s ± 7.1 s');
  assert.equal(displayCell(statOf([1, 2, 3])), '2.0 ± 1.0 (n=3)');
});

test('aggregateCell: numbers to a statistic over those that have one; text and seeds listed', () => {
  const s = aggregateCell([0.5, null, 0.7], true) as Stat;
  assert.ok(isStat(s) && s.n === 2 && Math.abs(s.mean - 0.6) < 1e-12);
  assert.equal(aggregateCell([0, 1, 2], false), '0,1,2');
  assert.equal(aggregateCell(['wasm', 'wasm'], true), 'wasm');
  assert.equal(aggregateCell(['wasm', 'cpu'], true), 'cpu,wasm');
  assert.equal(aggregateCell([2, 10, 1], false), '1,2,10');
  assert.equal(aggregateCell([null, null], true), null);
});

test('exps: experiments that differ only in seeds are one row, mean ± std and n per metric', () => {
  withSeeds((exps, names) => {
    assert.equal(exps.length, SEED_MARGINS.length * SEEDS.length + 1);
    assert.equal(replicateGroups(exps).length, SEED_MARGINS.length + 1);
    const t = buildTable(exps);
    assert.equal(t.rows.length, SEED_MARGINS.length + 1, 'one row per group, the lone experiment as it is');
    assert.equal(t.aggregated, true);
    for (const m of SEED_MARGINS) {
      const r = rowOf(t.rows, m);
      assert.deepEqual(
        r.members!.map((e) => e.name),
        names[m],
      );
      const auc = r.cells['evaluate.auc'] as Stat;
      assert.ok(isStat(auc), `margin ${m}: auc is a statistic`);
      assert.equal(auc.n, 3);
      assert.ok(Math.abs(auc.mean - mean(SEED_AUC[m])) < 1e-9);
      assert.ok(Math.abs(auc.std! - std(SEED_AUC[m])) < 1e-9);
      assert.equal(r.cells['triarchy.seed'], '0,1,2', 'the seeds of the group, listed');
      assert.equal(r.cells.experiment, `${names[m][0]} +2`);
      assert.ok(isStat(r.cells.duration), 'the duration too');
      assert.equal(r.cells['evaluate.backend'], 'wasm', 'equal text stays');
    }
    const lone = rowOf(t.rows, 0.7);
    assert.equal(lone.members, undefined);
    assert.equal(lone.cells['evaluate.auc'], 0.75);
    // The text table: one line per group, the statistic in the cell.
    const text = formatText(fitColumns(t, 200));
    assert.match(text, /0\.843 ± 0\.093 \(n=3\)/);
    assert.match(text, /0\.870 ± 0\.010 \(n=3\)/);
    assert.equal(text.trim().split('\n').length, 2 + SEED_MARGINS.length + 1, text);
  });
});

test('exps --no-aggregate: every experiment its own row', () => {
  withSeeds((exps) => {
    const t = buildTable(exps, { aggregate: false });
    assert.equal(t.rows.length, exps.length);
    assert.ok(t.rows.every((r) => !r.members && typeof r.cells['evaluate.auc'] === 'number'));
  });
});

test('exps: sorting and metric filters judge a group by its mean; param filters pick the experiments', () => {
  withSeeds((exps) => {
    const sorted = buildTable(exps, { sort: 'evaluate.auc', desc: true });
    // By the mean margin 0.5 is first; by the best single seed it would be 0.3 (0.95).
    assert.deepEqual(
      sorted.rows.map((r) => r.cells['triarchy.loss.margin']),
      [0.5, 0.3, 0.1, 0.7],
    );
    const good = buildTable(exps, { filters: ['evaluate.auc>0.845'] });
    assert.deepEqual(
      good.rows.map((r) => r.cells['triarchy.loss.margin']),
      [0.5],
      'margin 0.3 has one seed above, its mean (0.8433) is not',
    );
    // A param filter picks experiments before grouping: two seeds of each margin are left.
    const two = buildTable(exps, { filters: ['triarchy.seed<2'] });
    const r = rowOf(two.rows, 0.3);
    assert.equal((r.cells['evaluate.auc'] as Stat).n, 2);
    assert.ok(Math.abs((r.cells['evaluate.auc'] as Stat).mean - 0.79) < 1e-9);
    const one = buildTable(exps, { filters: ['triarchy.seed=2'] });
    assert.ok(
      one.rows.every((x) => !x.members),
      'one seed: plain rows',
    );
  });
});

test('exps --csv has NAME, NAME.std and NAME.n for statistics; --json the statistic itself', () => {
  withSeeds((exps) => {
    const t = buildTable(exps, { columns: ['triarchy.loss.margin', 'evaluate.auc'] });
    const lines = formatCsv(t).trim().split('\r\n');
    assert.equal(lines[0], 'experiment,triarchy.loss.margin,evaluate.auc,evaluate.auc.std,evaluate.auc.n');
    const row = lines.find((l) => l.includes(',0.5,'))!.split(',');
    assert.ok(
      Math.abs(Number(row[2]) - 0.87) < 1e-9 && Math.abs(Number(row[3]) - 0.01) < 1e-9 && row[4] === '3',
      row.join(),
    );
    assert.match(
      lines.find((l) => l.includes(',0.7,'))!,
      /,0\.75,,1$/,
      'a lone experiment: n 1, no std',
    );
    const json = JSON.parse(formatJson(t)) as Array<Record<string, unknown>>;
    const g = json.find((o) => o['triarchy.loss.margin'] === 0.1)!['evaluate.auc'] as Stat;
    assert.equal(g.n, 3);
    assert.deepEqual(g.values, [0.8, 0.81, 0.82]);
  });
});
