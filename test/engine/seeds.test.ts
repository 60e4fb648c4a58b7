// Seed replicates through the CLI: --seeds N (every stage's seed, or --seed-stages) as a sweep dimension, a sweep
// whose best point is judged by the mean over its seeds, and exps grouping replicates into one row (--no-aggregate:
// every experiment).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { countPoints, expandSweep, withSeeds } from '../../src/plan/sweep.js';
import { FacepipeError } from '../../src/core/errors.js';
import { makeWorkspace, removeWorkspace, repoRoot, run, runCli } from './rig.js';

test('withSeeds: each point once per seed, every seed path set together, seeds innermost; counted in the limit', () => {
  const points = expandSweep({
    method: 'grid',
    seed: 0,
    params: { 't.lr': { values: [1, 2] } },
    seeds: { n: 3, paths: ['p.seed', 't.seed'] },
  });
  assert.deepEqual(points, [
    { 't.lr': 1, 'p.seed': 0, 't.seed': 0 },
    { 't.lr': 1, 'p.seed': 1, 't.seed': 1 },
    { 't.lr': 1, 'p.seed': 2, 't.seed': 2 },
    { 't.lr': 2, 'p.seed': 0, 't.seed': 0 },
    { 't.lr': 2, 'p.seed': 1, 't.seed': 1 },
    { 't.lr': 2, 'p.seed': 2, 't.seed': 2 },
  ]);
  assert.deepEqual(withSeeds([{}], { n: 2, paths: ['s.seed'] }), [{ 's.seed': 0 }, { 's.seed': 1 }]);
  assert.throws(
    () =>
      countPoints(
        { method: 'grid', seed: 0, params: { 'a.b': { values: [1, 2, 3] } }, seeds: { n: 4, paths: ['a.seed'] } },
        10,
      ),
    (e: unknown) => e instanceof FacepipeError && /12 points \(a\.b: 3, x 4 seeds\); the limit is 10/.test(e.message),
  );
});

function faceWorkspace(): string {
  const ws = makeWorkspace();
  for (const d of ['pipelines', 'configs', 'data/cmu-faces'])
    cpSync(join(repoRoot(), d), join(ws, d), { recursive: true });
  return ws;
}

test('--seeds N: a sweep of N points setting every stage seed together; --seed-stages picks them; conflicts are exit 2', async () => {
  const ws = faceWorkspace();
  try {
    const all = await runCli(ws, ['status', '--seeds', '3']);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /^sweep: 3 experiments$/m);
    for (const k of [0, 1, 2])
      assert.match(
        all.stdout,
        new RegExp(`face-verification-\\w{6}  split\\.seed=${k} pretext\\.seed=${k} triarchy\\.seed=${k}$`, 'm'),
      );
    const some = await runCli(ws, [
      'status',
      '--seeds',
      '2',
      '--seed-stages',
      'pretext,triarchy',
      '--sweep',
      'triarchy.init=pretext,scratch',
    ]);
    assert.equal(some.code, 0, some.stderr);
    assert.match(some.stdout, /^sweep: 4 experiments$/m);
    assert.match(some.stdout, /triarchy\.init="scratch" pretext\.seed=1 triarchy\.seed=1$/m);
    assert.doesNotMatch(some.stdout, /split\.seed/);
    const bad = [
      [['--seeds', '2', '--sweep', 'triarchy.seed=4,5'], /--seeds 2 sets .*triarchy\.seed, which the sweep also sets/],
      [
        ['--seeds', '2', '--seed-stages', 'prune'],
        /stage 'prune' has no seed param.*\n.*stages with a seed: split, pretext, triarchy/,
      ],
      [['--seeds', '2', '--seed-stages', 'nope'], /no stage named 'nope'/],
      [['--seeds', '0'], /--seeds "0": expected a whole number of at least 1/],
      [['--seed-stages', 'pretext'], /--seed-stages needs --seeds N/],
    ] as const;
    for (const [args, msg] of bad) {
      const r = await runCli(ws, ['status', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, msg);
    }
  } finally {
    removeWorkspace(ws);
  }
});

// A score by mode and seed: mode a has the best mean (0.81), mode b the best single seed (0.95) and a lower mean.
const CMD = `case "$MODE$seed" in a0) s=0.80;; a1) s=0.81;; a2) s=0.82;; b0) s=0.70;; b1) s=0.70;; b2) s=0.95;; esac; printf '{"score": %s}' "$s" > {outputs.m}`;
const PIPELINE = `name: sd
stages:
  train:
    kind: command
    params:
      cmd: ${JSON.stringify(CMD)}
      env: { MODE: a, seed: 0 }
      outputs: { m: file }
      metrics: m
      headline: [score]
`;

test('a sweep with seeds names the best point by its mean over the seeds; exps groups the replicates', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
  try {
    const sweep = ['--sweep', 'train.env.MODE=a,b', '--sweep', 'train.env.seed=0,1,2'];
    const r = await runCli(ws, ['run', 'pipelines/p.yaml', ...sweep, '--progress', 'plain']);
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-1000));
    assert.match(
      r.stdout,
      /^best point by train\.score \(max, mean over seeds\) of 6 experiments: sd-\w{6} \+2 {2}train\.env\.MODE="a" {2}train\.score 0\.810 ± 0\.010 \(n=3\)$/m,
      r.stdout.slice(-600),
    );
    const json = await run(ws, 'pipelines/p.yaml', ...sweep);
    const ev = json.events.find((e) => e.type === 'sweep-best') as {
      point: Record<string, unknown>;
      value: number;
      replicates: { n: number; experiments: string[] };
    };
    assert.deepEqual(ev.point, { 'train.env.MODE': 'a' });
    assert.ok(Math.abs(ev.value - 0.81) < 1e-9);
    assert.equal(ev.replicates.n, 3);
    assert.equal(ev.replicates.experiments.length, 3);

    const exps = await runCli(ws, ['exps', '--sort', 'score', '--desc']);
    assert.equal(exps.code, 0, exps.stderr);
    const lines = exps.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2 + 2, exps.stdout);
    assert.match(lines[2], /^sd-\w{6} \+2\s+a\s+0,1,2\s+0\.810 ± 0\.010 \(n=3\)/);
    assert.match(lines[3], /^sd-\w{6} \+2\s+b\s+0,1,2\s+0\.78 ± 0\.14 \(n=3\)/);
    const every = await runCli(ws, ['exps', '--no-aggregate', '--json']);
    assert.equal(every.code, 0, every.stderr);
    assert.equal((JSON.parse(every.stdout) as unknown[]).length, 6);
    const noSeed = await runCli(ws, ['run', 'pipelines/p.yaml', '--seeds', '2']);
    assert.equal(noSeed.code, 2);
    assert.match(noSeed.stderr, /--seeds: no stage of pipelines\/p\.yaml has a seed param/);
  } finally {
    removeWorkspace(ws);
  }
});
