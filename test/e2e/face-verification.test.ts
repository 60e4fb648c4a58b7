// The product's main job, end to end through the CLI on the tiny config: every stage runs, a second run is
// fully cached, a triplet-margin change reruns exactly triarchy, prune and evaluate, and a run killed during
// triarchy resumes from its epoch checkpoint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { finalStates, makeWorkspace, removeWorkspace, repoRoot, runCli, startCli, type Event } from '../engine/rig.js';

const STAGES = ['split', 'pretext', 'triarchy', 'prune', 'evaluate'];

function faceWorkspace(): string {
  const ws = makeWorkspace();
  const root = repoRoot();
  for (const d of ['pipelines', 'configs', 'data/cmu-faces']) cpSync(join(root, d), join(ws, d), { recursive: true });
  return ws;
}

const run = (ws: string, ...extra: string[]) =>
  runCli(ws, ['run', '--config', 'configs/tiny.yaml', '--progress', 'json', '--backend', 'wasm', ...extra], 300_000);
const ran = (events: Event[]) =>
  Object.entries(finalStates(events))
    .filter(([, s]) => s === 'done')
    .map(([k]) => k)
    .sort();

function latestLog(ws: string, stage: string): string {
  const runs = readdirSync(join(ws, 'results/runs')).sort();
  return readFileSync(join(ws, 'results/runs', runs.at(-1)!, 'logs', `${stage}.log`), 'utf8');
}

test('the face-verification pipeline runs, caches, reruns only what a margin change affects, and resumes triarchy', async () => {
  const ws = faceWorkspace();
  try {
    const first = await run(ws);
    assert.equal(first.code, 0, first.stderr + first.stdout.slice(-2000));
    assert.deepEqual(ran(first.events), [...STAGES].sort());
    const backends = first.events.filter((e) => e.type === 'backend').map((e) => (e as { backend: string }).backend);
    assert.ok(backends.length > 0 && backends.every((b) => b === 'wasm'), `backends: ${backends}`);
    const metrics = JSON.parse(
      readFileSync(join(ws, 'results/face-verification/evaluate/report/metrics.json'), 'utf8'),
    );
    assert.equal(typeof metrics.test.accuracy_median, 'number');
    assert.ok(existsSync(join(ws, 'results/face-verification/evaluate/report/roc.png')));
    assert.ok(existsSync(join(ws, 'results/face-verification/prune/model/model.json')));
    const record = JSON.parse(
      readFileSync(join(ws, 'results/runs', readdirSync(join(ws, 'results/runs')).sort().at(-1)!, 'run.json'), 'utf8'),
    );
    assert.equal(record.status, 'ok');
    assert.equal(record.backend.used.triarchy, 'wasm');

    const second = await run(ws);
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(finalStates(second.events), Object.fromEntries(STAGES.map((s) => [s, 'cached'])));

    const margin = await run(ws, '--set', 'triarchy.loss.margin=0.3');
    assert.equal(margin.code, 0, margin.stderr);
    assert.deepEqual(
      ran(margin.events),
      ['evaluate', 'prune', 'triarchy'],
      JSON.stringify(finalStates(margin.events)) + margin.stdout.slice(-3000),
    );
    const reason = margin.events.find(
      (e) => e.type === 'stage-state' && e.stage === 'triarchy' && e.state === 'running',
    ) as { reason: string };
    assert.match(reason.reason, /params changed: triarchy\.loss\.margin null -> 0\.3/);

    // Kill the runner (kill -9) once triarchy has validated epoch 1, then resume. (Another hinge margin would
    // not do here: while every triplet is active the hinge's gradient does not depend on the margin, so the
    // model, and hence prune's output, can be byte-identical and evaluate rightly stays cached.)
    const args = [
      'run',
      '--config',
      'configs/tiny.yaml',
      '--progress',
      'json',
      '--backend',
      'wasm',
      '--set',
      'triarchy.loss.weights.center=0.5',
    ];
    const killed = startCli(ws, args, (e, child) => {
      if (e.type === 'stage-validation' && e.stage === 'triarchy' && e.epoch === 1) child.kill('SIGKILL');
    });
    const k = await killed.done;
    assert.equal(k.signal, 'SIGKILL', 'the run should have been killed during triarchy');
    assert.ok(!k.events.some((e) => e.type === 'stage-state' && e.stage === 'triarchy' && e.state === 'done'));
    const resumed = await runCli(ws, args, 300_000);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(
      ran(resumed.events),
      ['evaluate', 'prune', 'triarchy'],
      JSON.stringify(finalStates(resumed.events)),
    );
    const why = resumed.events.find(
      (e) => e.type === 'stage-state' && e.stage === 'triarchy' && e.state === 'running',
    ) as { reason: string };
    assert.match(why.reason, /resuming from the interrupted run's checkpoint/);
    const log = latestLog(ws, 'triarchy');
    assert.match(log, /^epoch 2\/2/m);
    assert.doesNotMatch(log, /^epoch 1\/2/m, 'epoch 1 must not be trained again');
  } finally {
    removeWorkspace(ws);
  }
});
