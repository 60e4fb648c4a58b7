// Hyperband through the CLI on the tiny config: min 1, max 2 epochs, eta 2 gives two brackets over 4 random points:
// bracket 1 starts 2 points at 1 epoch and takes the better one to 2, bracket 2 trains 2 points to 2 at once. Every
// bracket's last rung is pruned and evaluated; the best of all of them by validation AUC is the sweep's; a rerun
// is all cached and picks the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { finalStates, makeWorkspace, removeWorkspace, repoRoot, runCli, type Event } from '../engine/rig.js';

const ARGS = [
  'run',
  '--config',
  'configs/tiny.yaml',
  '--backend',
  'wasm',
  '--progress',
  'json',
  '--sweep',
  'triarchy.optimizer.lr=loguniform(0.0001,0.01)',
  '--sweep-method',
  'hyperband',
  '--min-epochs',
  '1',
  '--max-epochs',
  '2',
  '--eta',
  '2',
];

type Rung = Extract<Event, { type: 'sweep-rung' }>;
type Ranking = Extract<Event, { type: 'sweep-ranking' }>;

test('hyperband: two brackets, each halved; the best finalist of all brackets by val_auc; a cached rerun', async () => {
  const ws = makeWorkspace();
  try {
    for (const d of ['pipelines', 'configs', 'data/cmu-faces'])
      cpSync(join(repoRoot(), d), join(ws, d), { recursive: true });
    const r = await runCli(ws, ARGS, 600_000);
    assert.equal(r.code, 0, r.stderr);
    const rungs = r.events.filter((e): e is Rung & { time: string } => e.type === 'sweep-rung');
    assert.deepEqual(
      rungs.map((x) => [x.bracket?.index, x.rung, x.epochs, x.experiments.length]),
      [
        [1, 1, 1, 2],
        [1, 2, 2, 1],
        [2, 1, 2, 2],
      ],
    );
    const points = new Set([...rungs[0].experiments, ...rungs[2].experiments]);
    assert.equal(points.size, 4, 'each bracket draws its own points');
    const rankings = r.events.filter((e): e is Ranking & { time: string } => e.type === 'sweep-ranking');
    const finalists = rankings.flatMap((x) => x.ranked.filter((y) => y.state === 'final'));
    assert.equal(finalists.length, 3);
    // Every finalist is evaluated; the stopped point is not.
    const evaluated = Object.entries(finalStates(r.events))
      .filter(([id, s]) => id.endsWith('evaluate') && s === 'done')
      .map(([id]) => (id.includes('/') ? id.split('/')[0] : rungs[1].experiments[0]))
      .sort();
    assert.deepEqual(evaluated, finalists.map((f) => f.experiment).sort());
    const best = r.events.find((e) => e.type === 'sweep-best') as Extract<Event, { type: 'sweep-best' }>;
    const top = [...finalists].sort((a, b) => (b.value ?? -1) - (a.value ?? -1))[0];
    assert.equal(best.experiment, top.experiment);
    assert.equal(best.metric, 'triarchy.val_auc');

    const exps = await runCli(ws, ['exps', '--json', '--columns', 'rung,halving']);
    const rows = JSON.parse(exps.stdout) as Array<{ experiment: string; rung: number; halving: string }>;
    const stopped = rankings[0].ranked.find((y) => y.state === 'stopped')!.experiment;
    assert.deepEqual(
      rows.find((x) => x.experiment === stopped),
      { experiment: stopped, rung: 1, halving: 'b1/2 stopped at rung 1/2: rank 2 of 2' },
    );
    assert.match(rows.find((x) => x.experiment === rungs[2].experiments[0])!.halving, /^b2\/2 final: rank [12] of 2$/);

    const again = await runCli(ws, ARGS, 300_000);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(Object.values(finalStates(again.events)).every((s) => s === 'cached'));
    const bestAgain = again.events.find((e) => e.type === 'sweep-best') as Extract<Event, { type: 'sweep-best' }>;
    assert.equal(bestAgain.experiment, best.experiment);
  } finally {
    removeWorkspace(ws);
  }
});
