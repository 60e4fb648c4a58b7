import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { formatCsv as writeCsv } from '../../src/core/csv.js';
import { FacepipeError, formatError } from '../../src/core/errors.js';
import {
  flatten,
  loadExperiments,
  loadRocs,
  parseExperiment,
  rocsFromCsv,
  type ExperimentRecord,
} from '../../src/compare/load.js';
import {
  buildTable,
  compareCells,
  fitColumns,
  formatCsv,
  formatDate,
  formatSeconds,
  formatJson,
  formatMd,
  formatText,
  matches,
  mdCell,
  parseFilter,
} from '../../src/compare/table.js';
import { HOSTILE, HOSTILE_NAME, makeCompareWorkspace, MARGINS, RATES } from './fixture.js';

function exp(
  name: string,
  params: Record<string, unknown>,
  metrics: Record<string, number | string> = {},
  point: Record<string, unknown> = {},
): ExperimentRecord {
  const stages: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) {
    const [stage, ...rest] = k.split('.');
    const s = (stages[stage] ??= { state: 'done', params: {}, metrics: {}, outputs: {} }) as {
      params: Record<string, unknown>;
    };
    let o = s.params;
    for (const p of rest.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
    o[rest.at(-1)!] = v;
  }
  for (const [k, v] of Object.entries(metrics)) {
    const [stage, m] = k.split('.');
    const s = (stages[stage] ??= { state: 'done', params: {}, metrics: {}, outputs: {} }) as {
      metrics: Record<string, unknown>;
    };
    s.metrics[m] = v;
  }
  return parseExperiment(
    JSON.stringify({ experiment: name, pipeline: 'p.yaml', lastRun: 'r', point, stages }),
    `results/${name}/experiment.json`,
  );
}

const three = () => [
  exp(
    'a',
    { 't.loss.margin': 0.3, 't.epochs': 5, 't.optimizer.lr': 0.001, 's.seed': 0 },
    { 'e.auc': 0.9, 'e.backend': 'wasm' },
    { 't.loss.margin': 0.3 },
  ),
  exp(
    'b',
    { 't.loss.margin': 0.5, 't.epochs': 5, 't.optimizer.lr': 0.001, 's.seed': 0 },
    { 'e.auc': 0.7, 'e.backend': 'wasm' },
    { 't.loss.margin': 0.5 },
  ),
  exp(
    'c',
    { 't.loss.margin': 0.1, 't.epochs': 10, 't.optimizer.lr': 0.001, 's.seed': 0 },
    { 'e.auc': 0.8, 'e.backend': 'cpu' },
    { 't.loss.margin': 0.1 },
  ),
];

test('flatten: nested objects to dotted keys, arrays as JSON, empty objects add nothing', () => {
  assert.deepEqual(flatten({ loss: { margin: 0.3, w: { a: 1 } }, aug: ['flip'], env: {}, n: null }, 't'), {
    't.loss.margin': 0.3,
    't.loss.w.a': 1,
    't.aug': '["flip"]',
    't.n': null,
  });
});

test('table: only differing params are shown (swept first), metrics but not backends; --all-params shows the rest', () => {
  const t = buildTable(three());
  assert.deepEqual(
    t.columns.map((c) => c.name),
    ['experiment', 't.loss.margin', 't.epochs', 'e.auc'],
  );
  assert.deepEqual(
    t.columns.map((c) => c.kind),
    ['meta', 'param', 'param', 'metric'],
  );
  assert.equal(t.columns[1].swept, true);
  const all = buildTable(three(), { allParams: true });
  assert.deepEqual(
    all.columns.filter((c) => c.kind === 'param').map((c) => c.name),
    ['t.loss.margin', 't.epochs', 't.optimizer.lr', 's.seed'],
  );
  // A param present in one experiment and missing in another differs.
  const withExtra = [
    ...three(),
    exp('d', { 't.loss.margin': 0.3, 't.epochs': 5, 't.optimizer.lr': 0.001, 's.seed': 0, 's.extra': 1 }),
  ];
  assert.ok(buildTable(withExtra).columns.some((c) => c.name === 's.extra'));
  // One experiment: nothing differs, only swept params and metrics.
  assert.deepEqual(
    buildTable(three().slice(0, 1)).columns.map((c) => c.name),
    ['experiment', 't.loss.margin', 'e.auc'],
  );
});

test('table: sort by any column, numbers numerically, --desc, empty cells last either way', () => {
  const rows = (o: Parameters<typeof buildTable>[1]) =>
    buildTable([...three(), exp('d', { 't.loss.margin': 0.2 })], o).rows.map((r) => r.experiment.name);
  assert.deepEqual(rows({}), ['a', 'b', 'c', 'd']);
  assert.deepEqual(rows({ sort: 'e.auc' }), ['b', 'c', 'a', 'd']);
  assert.deepEqual(rows({ sort: 'e.auc', desc: true }), ['a', 'c', 'b', 'd']);
  assert.deepEqual(rows({ sort: 't.loss.margin' }), ['c', 'd', 'a', 'b']);
  assert.deepEqual(rows({ sort: 'auc', desc: true }), ['a', 'c', 'b', 'd'], 'a unique suffix names the column');
  assert.ok(compareCells(2, 10) < 0, 'numeric, not text, order');
  // --columns picks and orders columns (suffixes allowed); the experiment name always comes first.
  assert.deepEqual(
    buildTable(three(), { columns: ['auc', 's.seed', 'experiment'] }).columns.map((c) => c.name),
    ['experiment', 'e.auc', 's.seed'],
  );
  assert.throws(
    () => buildTable(three(), { columns: ['nope'] }),
    (e: unknown) => e instanceof FacepipeError && /--columns/.test(e.message),
  );
  // Sorting by a hidden column shows it.
  assert.ok(buildTable(three(), { sort: 's.seed' }).columns.some((c) => c.name === 's.seed'));
});

test('table: filters by metric and param, combined with AND; ops = != < <= > >= ~', () => {
  const names = (filters: string[]) => buildTable(three(), { filters }).rows.map((r) => r.experiment.name);
  assert.deepEqual(names(['e.auc>0.75']), ['a', 'c']);
  assert.deepEqual(names(['e.auc>=0.8', 't.epochs=5']), ['a']);
  assert.deepEqual(names(['t.loss.margin=0.3']), ['a']);
  assert.deepEqual(names(['t.loss.margin = .30']), ['a'], 'numbers compare as numbers');
  assert.equal(matches(0.1 + 0.2, parseFilter('x=0.3')), true, 'equal within rounding');
  assert.equal(matches(0.3001, parseFilter('x=0.3')), false);
  assert.deepEqual(names(['e.backend!=wasm']), ['c']);
  assert.deepEqual(names(["e.backend='wasm'"]), ['a', 'b'], 'quotes around the value are stripped');
  assert.deepEqual(names(['experiment~^[bc]$']), ['b', 'c']);
  assert.deepEqual(names(['e.auc<0.8']), ['b']);
  assert.deepEqual(names(['e.auc<=0.8']), ['b', 'c']);
  // What differs is judged among the rows left: t.epochs is 5 in both, so it is hidden; the swept margin stays.
  assert.deepEqual(
    buildTable(three(), { filters: ['t.epochs=5'] }).columns.map((c) => c.name),
    ['experiment', 't.loss.margin', 'e.auc'],
  );
  assert.equal(matches(null, parseFilter('x>1')), false, 'an empty cell is never larger or smaller');
  assert.equal(matches('abc', parseFilter('x>1')), false, 'text is not compared with a number');
  assert.deepEqual(parseFilter('evaluate.tar_at_far_1e-2>=0.5'), {
    column: 'evaluate.tar_at_far_1e-2',
    op: '>=',
    value: '0.5',
    text: 'evaluate.tar_at_far_1e-2>=0.5',
  });
});

test('table: unknown sort or filter column is a FacepipeError naming the known columns', () => {
  for (const o of [{ sort: 'e.acu' }, { filters: ['e.acu>1'] }]) {
    assert.throws(
      () => buildTable(three(), o),
      (e: unknown) => {
        assert.ok(e instanceof FacepipeError);
        assert.equal(e.diagnostics[0].code, 'unknown-column');
        const text = formatError(e);
        assert.match(text, /unknown column "e\.acu"/);
        assert.match(text, /did you mean "e\.auc"/);
        for (const c of ['experiment', 't.loss.margin', 't.optimizer.lr', 'e.auc', 'e.backend'])
          assert.ok(text.includes(c), `names ${c}: ${text}`);
        return true;
      },
    );
  }
  assert.throws(
    () => buildTable(three(), { filters: ['no operator here'] }),
    (e: unknown) => e instanceof FacepipeError && e.diagnostics[0].code === 'bad-filter',
  );
  assert.throws(
    () => buildTable(three(), { filters: ['experiment~(('] }),
    (e: unknown) => e instanceof FacepipeError && /regular expression/.test(e.message),
  );
  for (const typo of ['e.auc>>0.5', 'e.auc=<0.5', 'e.auc>']) {
    assert.throws(
      () => parseFilter(typo),
      (e: unknown) => e instanceof FacepipeError && e.diagnostics[0].code === 'bad-filter',
      typo,
    );
  }
  assert.equal(parseFilter(`e.note='>x'`).value, '>x', 'a quoted value may start with an operator');
});

test('csv: RFC 4180 quoting, CRLF, exact numbers', () => {
  assert.equal(writeCsv([['plain', 'a,b', 'say "hi"', 'two\nlines']]), 'plain,"a,b","say ""hi""","two\nlines"\n');
  const t = buildTable([
    exp('x,1', { 's.v': 'a "q"', 's.n': 0.1 + 0.2 }),
    exp('y', { 's.v': 'line1\nline2', 's.n': 1 }),
  ]);
  const csv = formatCsv(t);
  assert.equal(csv, 'experiment,s.v,s.n\r\n"x,1","a ""q""",0.30000000000000004\r\ny,"line1\nline2",1\r\n');
});

test('markdown: pipes, backslashes, newlines and markup escaped; numeric columns right-aligned', () => {
  assert.equal(mdCell('a|b'), 'a\\|b');
  assert.equal(mdCell('<b>&'), '&lt;b&gt;&amp;');
  assert.equal(mdCell('x\ny'), 'x<br>y');
  const md = formatMd(buildTable([exp('a', { 's.v': 'p|q', 's.n': 2 }), exp('b', { 's.v': '<i>', 's.n': 3 })]));
  const lines = md.trimEnd().split('\n');
  assert.equal(lines[0], '| experiment | s.v | s.n |');
  assert.equal(lines[1], '| --- | --- | ---: |');
  assert.equal(lines[2], '| a | p\\|q | 2 |');
  assert.equal(lines[3], '| b | &lt;i&gt; | 3 |');
  // Every row has the same number of unescaped cell separators.
  for (const l of lines) assert.equal(l.replace(/\\\|/g, '').split('|').length, 5);
});

test('json: one object per row, keys in column order, exact values, null when missing', () => {
  const rows = JSON.parse(
    formatJson(buildTable([...three(), exp('d', { 't.loss.margin': 0.2 })], { sort: 'e.auc', desc: true })),
  );
  assert.equal(rows.length, 4);
  assert.deepEqual(Object.keys(rows[0]), [
    'experiment',
    't.loss.margin',
    't.epochs',
    't.optimizer.lr',
    's.seed',
    'e.auc',
  ]);
  assert.deepEqual(rows[0], {
    experiment: 'a',
    't.loss.margin': 0.3,
    't.epochs': 5,
    't.optimizer.lr': 0.001,
    's.seed': 0,
    'e.auc': 0.9,
  });
  assert.equal(rows[3].experiment, 'd');
  assert.equal(rows[3]['e.auc'], null);
});

test('text: aligned columns, numbers right-aligned, control characters and long text made one short line', () => {
  const text = formatText(
    buildTable([exp('a', { 's.v': 'x\ny', 's.n': 2.5 }), exp('bb', { 's.v': 'z'.repeat(60), 's.n': 10 })]),
  );
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 4);
  assert.match(lines[0], /^experiment\s+v\s+n$/, 'short headers');
  assert.ok(lines[2].includes('x y'));
  assert.ok(lines[3].includes('z'.repeat(39) + '…'));
  assert.ok(lines[2].endsWith(' 2.5') && lines[3].endsWith('  10'), 'right-aligned numbers');
  assert.match(
    formatText(buildTable(three(), { filters: ['e.auc>5'] })),
    /no experiment matches the filters \(3 in all\)/,
  );
});

test('load: a workspace of experiments (runs/ and stray files ignored), differing params, ROC in three formats', () => {
  const { root, grid } = makeCompareWorkspace();
  try {
    const warnings: string[] = [];
    const exps = loadExperiments(root, (w) => warnings.push(w));
    assert.deepEqual(warnings, []);
    assert.equal(exps.length, MARGINS.length * RATES.length + 2, 'the grid, the hostile one and the base');
    const t = buildTable(exps);
    const params = t.columns.filter((c) => c.kind === 'param').map((c) => c.name);
    assert.deepEqual(params.slice(0, 2), ['triarchy.loss.margin', 'triarchy.optimizer.learning_rate']);
    assert.ok(params.includes('triarchy.note'), 'a param only one experiment has');
    assert.ok(!params.includes('triarchy.epochs') && !params.includes('split.seed'), 'equal params hidden');
    assert.ok(
      t.columns.some((c) => c.name === 'status'),
      'status shown because one experiment failed',
    );
    const evil = t.rows.find((r) => r.experiment.name === HOSTILE_NAME)!;
    assert.equal(evil.cells['triarchy.note'], HOSTILE);
    assert.equal(evil.cells.status, 'failed: triarchy');
    const best = buildTable(exps, { sort: 'evaluate.auc', desc: true }).rows[0].experiment.name;
    assert.equal(best, grid.reduce((a, b) => (b.auc > a.auc ? b : a)).name);
    for (const [i, g] of grid.entries()) {
      const rocs = loadRocs(
        root,
        exps.find((e) => e.name === g.name)!,
      );
      if (i === 2) {
        assert.equal(rocs.length, 0);
        continue;
      }
      assert.equal(rocs[0].label, 'test', `${g.name} test curve first`);
      assert.equal(rocs[0].far.length, 41);
      assert.ok(rocs[0].far.every((f, j) => j === 0 || f >= rocs[0].far[j - 1]));
    }
    assert.deepEqual(rocsFromCsv('far,tar\n0,0\n0.5,0.8\n1,1\n'), [
      { label: 'test', far: [0, 0.5, 1], tar: [0, 0.8, 1] },
    ]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('load: a broken experiment.json is a warning naming the file, the others still load', () => {
  const { root } = makeCompareWorkspace();
  try {
    writeFileSync(`${root}/results/evil/experiment.json`, '{ nope');
    const warnings: string[] = [];
    const exps = loadExperiments(root, (w) => warnings.push(w));
    assert.equal(exps.length, MARGINS.length * RATES.length + 1);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /results\/evil\/experiment\.json is not valid JSON/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

/** An experiment.json of the current format: headline metrics, timings, kept stages. */
function summaryOf(name: string, stages: Record<string, Record<string, unknown>>, point: Record<string, unknown> = {}) {
  return parseExperiment(
    JSON.stringify({
      experiment: name,
      pipeline: 'p.yaml',
      lastRun: '2026-12-01T10-00-00-000-abcd',
      startedAt: '2026-12-01T10:00:00.000Z',
      git: { commit: 'b'.repeat(40), dirty: false },
      point,
      stages,
    }),
    `results/${name}/experiment.json`,
  );
}

const evaluate = (auc: number, extra: Record<string, unknown> = {}) => ({
  state: 'done',
  params: { rule: 'eer' },
  metrics: { auc, eer: 1 - auc, accuracy: auc - 0.05, backend: 'wasm', params: 36876 },
  outputs: {},
  durationMs: 2500,
  headline: [
    { metric: 'auc', goal: 'max' },
    { metric: 'eer', goal: 'min' },
  ],
  ...extra,
});
const prune = {
  state: 'cached',
  params: {},
  metrics: { params: 36876, backend: 'wasm' },
  outputs: {},
  durationMs: 500,
};
const train = (margin: number, metrics: Record<string, number> = { val_auc: 0.7 }) => ({
  state: 'done',
  params: { margin, epochs: 10 },
  metrics,
  outputs: {},
  durationMs: 60_000,
});

test('table: headline metrics, duration and date by default; constants, backends, the params repeat only with --all', () => {
  const exps = [
    summaryOf('a', { train: train(0.1), prune, evaluate: evaluate(0.8) }, { 'train.margin': 0.1 }),
    summaryOf('b', { train: train(0.3), prune, evaluate: evaluate(0.9) }, { 'train.margin': 0.3 }),
  ];
  const t = buildTable(exps);
  assert.deepEqual(
    t.columns.map((c) => c.name),
    ['experiment', 'train.margin', 'evaluate.auc', 'evaluate.eer', 'duration', 'date'],
  );
  assert.equal(t.rows[0].cells.duration, 63, 'the stages computing times, in seconds');
  assert.equal(t.rows[0].cells.date, '2026-12-01T10:00:00.000Z');
  const text = formatText(t);
  assert.match(text.split('\n')[0], /^experiment\s+margin\s+auc\s+eer\s+duration\s+date$/);
  assert.match(text, /1m03s/);
  assert.ok(text.includes(formatDate('2026-12-01T10:00:00.000Z')));
  const all = buildTable(exps, { all: true }).columns.map((c) => c.name);
  for (const c of ['pipeline', 'lastRun', 'train.epochs', 'evaluate.backend', 'evaluate.accuracy', 'prune.params'])
    assert.ok(all.includes(c), `--all shows ${c}: ${all.join(' ')}`);
  assert.ok(!all.includes('evaluate.params'), 'evaluate.params repeats prune.params: shown once');
  assert.ok(!all.includes('train.val_auc(metric)'));
  assert.equal(formatSeconds(8.46), '8.5 s');
  assert.equal(formatSeconds(3725), '1h02m');
});

test('table: a text table wider than --width leaves out columns, least important first, and names them', () => {
  const wide = (name: string, i: number) =>
    summaryOf(
      name,
      {
        train: {
          ...train(i / 10),
          params: Object.fromEntries(Array.from({ length: 12 }, (_, k) => [`knob_number_${k}`, i * 100 + k])),
        },
        evaluate: evaluate(0.5 + i / 10),
      },
      { 'train.knob_number_0': i * 100 },
    );
  const t = buildTable([wide('first-experiment', 1), wide('second-experiment', 2)]);
  const fitted = fitColumns(t, 120);
  const lines = formatText(fitted).trimEnd().split('\n');
  for (const l of lines.slice(0, 4)) assert.ok(l.length <= 120, `${l.length}: ${l}`);
  const names = fitted.columns.map((c) => c.name);
  for (const c of ['experiment', 'train.knob_number_0', 'evaluate.auc', 'duration', 'date'])
    assert.ok(names.includes(c), `kept ${c}: ${names.join(' ')}`);
  assert.ok(fitted.dropped!.length > 0 && fitted.dropped!.every((c) => c.kind === 'param' && !c.swept));
  assert.match(
    lines.at(-1)!,
    /^\d+ more columns to fit the width \(train\.knob_number_\d+.*\): --all, --columns or --width$/,
  );
  assert.equal(fitColumns(t, 1000).dropped!.length, 0, 'nothing left out when it fits');
});

test('load: after an interrupted run an experiment keeps its last complete figures, marked', () => {
  const e = summaryOf('a', {
    train: { ...train(0.1), kept: { run: '2026-11-30T09-00-00-000-0000', state: 'interrupted' } },
    evaluate: evaluate(0.8, { kept: { run: '2026-11-30T09-00-00-000-0000', state: 'not-run' } }),
  });
  assert.equal(e.status, 'interrupted: train');
  assert.deepEqual(e.kept, ['train', 'evaluate']);
  assert.equal(e.metrics['evaluate.auc'], 0.8, 'the figures are still there');
  const t = buildTable([e, summaryOf('b', { train: train(0.2), evaluate: evaluate(0.7) })]);
  assert.ok(t.columns.some((c) => c.name === 'status') && t.columns.some((c) => c.name === 'kept'));
  const text = formatText(t);
  assert.match(text, /^a\s+interrupted: train\s+train,evaluate\s/m);
  assert.match(text, /kept: stages showing their last complete figures/);
  // Not taken by the last run (--until): figures kept and marked, the status stays ok.
  const until = summaryOf('c', {
    train: train(0.1),
    evaluate: evaluate(0.8, { kept: { run: 'r0', state: 'not-run' } }),
  });
  assert.equal(until.status, 'ok');
  assert.deepEqual(until.kept, ['evaluate']);
});
