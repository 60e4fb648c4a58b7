// Successive halving, the plan: rungs and how many go on, the ranking (ties in sweep order, failures last), the
// standings' words, and bad sweep specs refused with exit 2, naming file, line, column and key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { hyperbandBrackets, rank, rungSchedule, standingAfter, type HalvingPlan } from '../../src/plan/halving.js';
import { makeWorkspace, removeWorkspace, repoRoot, runCli, writeFiles } from './rig.js';

test('rungs: min_epochs times eta up to max_epochs; floor(n / eta^i) candidates, at least 1', () => {
  assert.deepEqual(rungSchedule(20, 180, 3, 9), [
    { epochs: 20, candidates: 9 },
    { epochs: 60, candidates: 3 },
    { epochs: 180, candidates: 1 },
  ]);
  // max_epochs off the eta ladder ends the ladder; too few points still leave one.
  assert.deepEqual(
    rungSchedule(20, 100, 3, 10).map((r) => [r.epochs, r.candidates]),
    [
      [20, 10],
      [60, 3],
      [100, 1],
    ],
  );
  assert.deepEqual(
    rungSchedule(1, 4, 2, 2).map((r) => [r.epochs, r.candidates]),
    [
      [1, 2],
      [2, 1],
      [4, 1],
    ],
  );
  assert.deepEqual(rungSchedule(5, 5, 3, 4), [{ epochs: 5, candidates: 4 }], 'min = max: one rung, a plain grid');
  // A small eta still grows by at least one epoch a rung.
  assert.deepEqual(
    rungSchedule(2, 4, 1.2, 8).map((r) => r.epochs),
    [2, 3, 4],
  );
});

test('ranking: better first, ties in sweep order, no value last; the same input ranks the same', () => {
  const scored = [
    { item: 'a', value: 0.5 },
    { item: 'b', value: 0.7 },
    { item: 'c' },
    { item: 'd', value: 0.7 },
    { item: 'e', value: 0.1 },
  ];
  assert.deepEqual(
    rank(scored, 'max').map((r) => [r.item, r.rank]),
    [
      ['b', 1],
      ['d', 2],
      ['a', 3],
      ['e', 4],
      ['c', 5],
    ],
  );
  assert.deepEqual(
    rank(scored, 'min').map((r) => r.item),
    ['e', 'a', 'b', 'd', 'c'],
  );
});

test('standings say where a point stopped and why', () => {
  const plan: HalvingPlan = {
    metric: 'triarchy.val_auc',
    goal: 'max',
    stage: 'triarchy',
    param: 'epochs',
    path: 'triarchy.epochs',
    eta: 3,
    rungs: rungSchedule(20, 180, 3, 9),
  };
  const stopped = standingAfter(plan, 0, { rank: 5, value: 0.81234 }, 9);
  assert.equal(stopped.state, 'stopped');
  assert.equal(
    stopped.why,
    'stopped at 20 epochs: rank 5 of 9 by triarchy.val_auc 0.8123; the best 3 went on to 60 epochs',
  );
  assert.equal(standingAfter(plan, 1, { rank: 1, value: 0.9 }, 3).state, 'promoted');
  const final = standingAfter(plan, 2, { rank: 1, value: 0.91 }, 1);
  assert.equal(final.state, 'final');
  assert.match(final.why, /the last rung: trained to 180 epochs, then the stages after triarchy/);
  const failed = standingAfter(plan, 0, { rank: 9 }, 9, 'triarchy failed');
  assert.equal(failed.state, 'failed');
  assert.equal(failed.why, 'stopped at 20 epochs: no triarchy.val_auc (triarchy failed)');
});

function faceWorkspace(files: Record<string, string> = {}): string {
  const ws = makeWorkspace();
  for (const d of ['pipelines', 'configs', 'data/cmu-faces'])
    cpSync(join(repoRoot(), d), join(ws, d), { recursive: true });
  writeFiles(ws, files);
  return ws;
}

const SWEEP = (extra: string) =>
  `sweep:\n  method: halving\n  metric: triarchy.val_auc\n  mode: max\n  eta: 3\n${extra}  params:\n    triarchy.loss.margin: [0.1, 0.3]\n`;

test('bad halving specs: exit 2, nothing run, file:line:column and the key named', async () => {
  const ws = faceWorkspace({
    'sweeps/missing.yaml': SWEEP('  min_epochs: 20\n'),
    'sweeps/typo.yaml': SWEEP('  min_epochs: 20\n  max_epochs: 180\n  etaa: 2\n'),
    'sweeps/eta.yaml': SWEEP('  min_epochs: 20\n  max_epochs: 180\n').replace('eta: 3', 'eta: 1'),
    'sweeps/order.yaml': SWEEP('  min_epochs: 200\n  max_epochs: 180\n'),
    'sweeps/test-set.yaml': SWEEP('  min_epochs: 20\n  max_epochs: 180\n').replace('triarchy.val_auc', 'evaluate.auc'),
    'sweeps/budget.yaml': SWEEP('  min_epochs: 20\n  max_epochs: 180\n') + '    triarchy.epochs: [10, 20]\n',
    'sweeps/grid.yaml': 'sweep:\n  method: grid\n  eta: 3\n  params:\n    triarchy.loss.margin: [0.1, 0.3]\n',
  });
  const bad = async (args: string[], ...patterns: RegExp[]) => {
    const r = await runCli(ws, ['run', '--config', 'configs/tiny.yaml', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    for (const p of patterns) assert.match(r.stderr, p, args.join(' '));
  };
  try {
    await bad(
      ['--sweep-file', 'sweeps/missing.yaml'],
      /sweeps\/missing\.yaml:2:\d+: error\[missing-key\]: missing required key 'max_epochs'/,
    );
    await bad(
      ['--sweep-file', 'sweeps/typo.yaml'],
      /sweeps\/typo\.yaml:8:3: error\[unknown-key\]: unknown key 'etaa'/,
      /at key: sweep\.etaa/,
      /did you mean 'eta'\?/,
    );
    await bad(['--sweep-file', 'sweeps/eta.yaml'], /sweeps\/eta\.yaml:5:8: .*sweep\.eta must be > 1/);
    await bad(
      ['--sweep-file', 'sweeps/order.yaml'],
      /sweeps\/order\.yaml:6:15: .*min_epochs \(200\) is above max_epochs \(180\)/,
    );
    await bad(
      ['--sweep-file', 'sweeps/test-set.yaml'],
      /sweeps\/test-set\.yaml:3:11: error\[bad-sweep\]: halving metric evaluate\.auc: evaluate is not trained in rungs/,
      /never the test set/,
      /use one of .*triarchy\.val_auc/,
    );
    await bad(
      ['--sweep-file', 'sweeps/budget.yaml'],
      /sweeps\/budget\.yaml:10:22: error\[bad-sweep\]: sweep param triarchy\.epochs is the halving budget/,
    );
    await bad(
      ['--sweep-file', 'sweeps/grid.yaml'],
      /sweeps\/grid\.yaml:3:8: .*sweep\.eta is a setting of successive halving/,
    );
    const cli = ['--sweep', 'triarchy.loss.margin=0.1,0.3', '--sweep-method', 'halving'];
    await bad(cli, /successive halving needs --min-epochs N and --max-epochs M/);
    await bad([...cli, '--min-epochs', '2', '--max-epochs', '4', '--eta', '1'], /--eta "1": expected a number above 1/);
    await bad(
      [...cli, '--min-epochs', '2', '--max-epochs', '4', '--set', 'triarchy.epochs=9'],
      /--set triarchy\.epochs=9: triarchy\.epochs is the halving budget/,
    );
    await bad(
      [...cli, '--min-epochs', '2', '--max-epochs', '4', '--metric', 'evaluate.eer'],
      /evaluate is not trained in rungs/,
    );
    await bad(['--sweep', 'triarchy.loss.margin=0.1,0.3', '--eta', '2'], /--eta is a setting of successive halving/);
    await bad(['--sweep-method', 'bisect'], /--sweep-method "bisect": no such method/);
    const status = await runCli(ws, ['status', '--config', 'configs/tiny.yaml', '--sweep-file', 'sweeps/typo.yaml']);
    assert.equal(status.code, 2, 'status refuses it the same way');
    // --samples N: N random points, halved the same way.
    const sampled = await runCli(ws, [
      'status',
      '--config',
      'configs/tiny.yaml',
      '--sweep',
      'triarchy.optimizer.lr=loguniform(1e-4,1e-2)',
      '--samples',
      '5',
      '--sweep-method',
      'halving',
      '--min-epochs',
      '1',
      '--max-epochs',
      '4',
      '--eta',
      '2',
    ]);
    assert.equal(sampled.code, 0, sampled.stderr);
    assert.match(sampled.stdout, /^sweep: 5 experiments$/m);
    assert.match(sampled.stdout, /halving: 5 points, triarchy\.epochs 1 -> 2 -> 4 \(5, 2, 1 candidates\)/);
    assert.equal((sampled.stdout.match(/triarchy +will run +never run/g) ?? []).length, 5);
    const hyper = ['--sweep-method', 'hyperband', '--min-epochs', '1', '--max-epochs', '4', '--eta', '2'];
    await bad(
      ['--sweep', 'triarchy.loss.margin=0.1,0.3', ...hyper],
      /hyperband needs 10 distinct points for its 3 brackets; the sweep's values give 2/,
    );
    await bad(
      ['--sweep', 'triarchy.optimizer.lr=uniform(0.0001,0.01)', '--samples', '4', ...hyper],
      /--samples: hyperband draws its own number of points per bracket/,
    );
  } finally {
    removeWorkspace(ws);
  }
});

test("Hyperband's brackets: from many points stopped early to a few trained fully (Li et al.'s table)", () => {
  const brackets = hyperbandBrackets(1, 81, 3);
  assert.deepEqual(
    brackets.map((b) => [b[0].epochs, b[0].candidates]),
    [
      [1, 81],
      [3, 34],
      [9, 15],
      [27, 8],
      [81, 5],
    ],
  );
  assert.deepEqual(
    brackets[0].map((r) => [r.epochs, r.candidates]),
    [
      [1, 81],
      [3, 27],
      [9, 9],
      [27, 3],
      [81, 1],
    ],
  );
  assert.deepEqual(
    hyperbandBrackets(1, 2, 2).map((b) => b.map((r) => [r.epochs, r.candidates])),
    [
      [
        [1, 2],
        [2, 1],
      ],
      [[2, 2]],
    ],
  );
});
