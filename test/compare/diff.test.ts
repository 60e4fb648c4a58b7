import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { parse } from 'yaml';
import { experimentConfig } from '../../src/compare/apply.js';
import {
  diffExperiments,
  findExperiment,
  formatDiffJson,
  formatDiffMd,
  formatDiffText,
} from '../../src/compare/diff.js';
import { loadExperiments } from '../../src/compare/load.js';
import { FacepipeError } from '../../src/core/errors.js';
import { makeCompareWorkspace } from './fixture.js';

function fixture() {
  const { root, grid } = makeCompareWorkspace();
  try {
    return { exps: loadExperiments(root), grid };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('diff: params that differ and metrics with the change from A to B, as dvc exp diff', () => {
  const { exps, grid } = fixture();
  const a = findExperiment(exps, grid[0].name);
  const b = findExperiment(exps, grid[2].name.slice(-6));
  assert.equal(b.name, grid[2].name, 'a unique suffix (the point hash) names an experiment');
  const d = diffExperiments(a, b);
  assert.deepEqual(
    d.params.map((r) => [r.name, r.a, r.b, r.change]),
    [['triarchy.loss.margin', 0.1, 0.3, 0.2]],
  );
  const auc = d.metrics.find((r) => r.name === 'evaluate.auc')!;
  assert.equal(
    auc.change,
    Number(((b.metrics['evaluate.auc'] as number) - (a.metrics['evaluate.auc'] as number)).toPrecision(12)),
  );
  assert.ok(
    !d.metrics.some((r) => r.name === 'evaluate.backend' || r.name === 'evaluate.params'),
    'equal and backends left out',
  );
  const all = diffExperiments(a, b, { all: true });
  assert.ok(all.params.some((r) => r.name === 'triarchy.epochs' && r.change === 0));
  assert.ok(all.metrics.some((r) => r.name === 'evaluate.backend' && r.change === null));
  const text = formatDiffText(d);
  assert.match(text, /^triarchy\.loss\.margin\s+0\.1\s+0\.3\s+\+0\.2$/m);
  assert.match(formatDiffMd(d), /^\| param \| face-verification-\w+ \| face-verification-\w+ \| change \|$/m);
  assert.deepEqual(JSON.parse(formatDiffJson(d)).params[0].name, 'triarchy.loss.margin');
  assert.match(formatDiffText(diffExperiments(a, a)), /the same params and metrics/);
});

test('diff: an unknown or ambiguous name is bad input naming the experiments', () => {
  const { exps } = fixture();
  for (const name of ['nope', 'face-verification-a0']) {
    assert.throws(
      () => findExperiment(exps, name),
      (e: unknown) =>
        e instanceof FacepipeError &&
        e.exitCode === 2 &&
        /^experiments: .*face-verification-a00000/.test(e.diagnostics[0].hint ?? ''),
    );
  }
});

test("apply: an experiment's resolved params as a config, every stage, read back equal", () => {
  const { exps, grid } = fixture();
  const e = findExperiment(exps, grid[4].name);
  const text = experimentConfig(e, 'configs/x.yaml');
  assert.match(text, new RegExp(`^# facepipe exps apply ${e.name}`));
  assert.match(text, /sweep point: triarchy\.loss\.margin=0\.5 triarchy\.optimizer\.learning_rate=0\.0001/);
  assert.match(text, /rerun it: facepipe run pipelines\/face-verification\.yaml --config configs\/x\.yaml/);
  const back = parse(text) as Record<string, unknown>;
  assert.deepEqual(Object.keys(back), ['split', 'triarchy', 'evaluate']);
  for (const [stage, s] of Object.entries(e.stages)) assert.deepEqual(back[stage], s.params, stage);
});
