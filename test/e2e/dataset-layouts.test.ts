// Each dataset layout facepipe reads, built from the bundled faces, through the whole tiny pipeline via the CLI:
// identity folders, a manifest, the 2020 challenge layout, a flat folder, LFW pairs.txt (with protocol lfw10).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { finalStates, makeWorkspace, removeWorkspace, repoRoot, runCli } from '../engine/rig.js';
import { buildLayout, LAYOUTS, type LayoutName } from './layouts.js';

const STAGES = ['split', 'pretext', 'triarchy', 'prune', 'evaluate'];

interface Summary {
  identities: { train: string[]; validation: string[]; test: string[] };
  images: { train: number };
  pairs: Record<'validation' | 'test', { source: string; images_in_no_listing?: number; folds?: number }>;
}

/** What each layout must show beyond a green run. */
const CHECKS: Record<LayoutName, (s: Summary, metrics: Record<string, unknown>, ws: string) => void> = {
  // configs/tiny.yaml: 3 validation and 3 test identities, the other 14 of the 20 train.
  'identity-folders': (s) => assert.equal(s.identities.train.length, 14),
  manifest: (s) => assert.equal(s.identities.train.length, 14),
  challenge: (s, _m, ws) => {
    assert.equal(s.identities.train.length, 14);
    assert.equal(s.pairs.test.source, 'csv');
    assert.ok(s.pairs.validation.images_in_no_listing! > 0 && s.pairs.test.images_in_no_listing! > 0);
    const train = readFileSync(join(ws, 'results/challenge/split/splits/train.csv'), 'utf8');
    assert.doesNotMatch(train, /^(validate|test)\//m, 'pair images never train');
  },
  flat: (s) => assert.equal(s.identities.train.length + s.identities.validation.length + s.identities.test.length, 20),
  lfw: (s, m) => {
    assert.equal(s.pairs.test.source, 'lfw');
    assert.equal(s.pairs.test.folds, 10);
    const lfw = (m.test as { lfw10: { folds: number; fold_source: string; accuracy_mean: number } }).lfw10;
    assert.equal(lfw.folds, 10);
    assert.match(lfw.fold_source, /pairs file/);
    assert.ok(lfw.accuracy_mean >= 0 && lfw.accuracy_mean <= 1);
  },
};

for (const layout of LAYOUTS) {
  test(`layout ${layout}: the tiny pipeline runs on it end to end`, async () => {
    const ws = makeWorkspace();
    try {
      cpSync(join(repoRoot(), 'configs'), join(ws, 'configs'), { recursive: true });
      const { pipeline } = await buildLayout(ws, layout);
      const args = ['run', pipeline, '--config', 'configs/tiny.yaml', '--progress', 'json', '--backend', 'wasm'];
      const r = await runCli(ws, args, 300_000);
      assert.equal(r.code, 0, r.stderr + r.stdout.slice(-3000));
      assert.deepEqual(finalStates(r.events), Object.fromEntries(STAGES.map((s) => [s, 'done'])));
      const read = (f: string) => JSON.parse(readFileSync(join(ws, 'results', layout, f), 'utf8')) as unknown;
      const metrics = read('evaluate/report/metrics.json') as Record<string, unknown>;
      assert.equal(typeof (metrics.test as { auc: number }).auc, 'number');
      CHECKS[layout](read('split/splits/summary.json') as Summary, metrics, ws);
    } finally {
      removeWorkspace(ws);
    }
  });
}
