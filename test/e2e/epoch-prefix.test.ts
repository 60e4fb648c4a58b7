// Epoch-prefix reuse through the CLI on the tiny config: raising triarchy.epochs trains only the remainder from the
// cached state, says so in status and in the record, and gives the bytes of training from scratch; a schedule
// that depends on epochs (cosine) reuses nothing; gc keeps the states of kept results and drops the rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  finalStates,
  listFiles,
  makeWorkspace,
  parseStatus,
  removeWorkspace,
  repoRoot,
  runCli,
  writeFiles,
  type Event,
} from '../engine/rig.js';
import { sealJson, unsealJson } from '../../src/core/sealed.js';

function faceWorkspace(): string {
  const ws = makeWorkspace();
  for (const d of ['pipelines', 'configs', 'data/cmu-faces'])
    cpSync(join(repoRoot(), d), join(ws, d), { recursive: true });
  return ws;
}

const BASE = ['--config', 'configs/tiny.yaml', '--until', 'triarchy'];
const run = (ws: string, ...extra: string[]) =>
  runCli(ws, ['run', ...BASE, '--backend', 'wasm', '--progress', 'json', ...extra], 300_000);
const status = (ws: string, ...extra: string[]) => runCli(ws, ['status', ...BASE, ...extra], 60_000);

/** The epochs triarchy trained in a run (from its step reports). */
const trainedEpochs = (events: Event[]) => [
  ...new Set(events.flatMap((e) => (e.type === 'stage-steps' && e.stage === 'triarchy' ? [e.epoch] : []))),
];

const model = (ws: string) => {
  const dir = join(ws, 'results/face-verification/triarchy/model');
  return Object.fromEntries(listFiles(dir).map((f) => [f, readFileSync(join(dir, f)).toString('base64')]));
};

const lastRun = (ws: string) => {
  const runs = readdirSync(join(ws, 'results/runs')).sort();
  return JSON.parse(readFileSync(join(ws, 'results/runs', runs.at(-1)!, 'run.json'), 'utf8')) as {
    stages: Array<{ stage: string; key: string; continuedFrom?: { epoch: number; key: string }; reason: string }>;
  };
};

test('raising triarchy.epochs continues from the cached epoch, says so, records it, and matches a fresh run', async () => {
  const ws = faceWorkspace();
  const fresh = faceWorkspace();
  try {
    const first = await run(ws);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(trainedEpochs(first.events), [1, 2]);
    const firstKey = lastRun(ws).stages.find((s) => s.stage === 'triarchy')!.key;

    const plan = parseStatus((await status(ws, '--set', 'triarchy.epochs=4')).stdout);
    assert.deepEqual(plan.triarchy, {
      action: 'will run',
      reason: 'epochs 2 -> 4, continuing from the cached epoch 2',
    });
    assert.equal(plan.split.action, 'cached');
    const pretext = parseStatus((await status(ws, '--set', 'pretext.epochs=3')).stdout);
    assert.equal(pretext.pretext.reason, 'epochs 1 -> 3, continuing from the cached epoch 1');
    assert.equal(pretext.triarchy.action, 'may run');

    const straight = await run(fresh, '--set', 'triarchy.epochs=4');
    assert.equal(straight.code, 0, straight.stderr);
    assert.deepEqual(trainedEpochs(straight.events), [1, 2, 3, 4]);
    const key4 = lastRun(fresh).stages.find((s) => s.stage === 'triarchy')!;
    assert.equal(key4.continuedFrom, undefined);
    // An attempt killed while the cached state was being put in the scratch folder left half of it there: the
    // next attempt puts it there again instead of resuming from half a state (a junk checkpoint here).
    const half = join(ws, '.facepipe/work', key4.key);
    writeFiles(half, {
      'checkpoint/epoch-checkpoint.fpck': 'junk',
      '.facepipe-continued.json': sealJson({ epoch: 2, key: firstKey, seeding: true }),
    });

    const more = await run(ws, '--set', 'triarchy.epochs=4');
    assert.equal(more.code, 0, more.stderr);
    assert.deepEqual(trainedEpochs(more.events), [3, 4], 'only the remaining epochs are trained');
    const rec = lastRun(ws).stages.find((s) => s.stage === 'triarchy')!;
    assert.equal(
      rec.reason,
      "epochs 2 -> 4, continuing from the cached epoch 2; resuming from the interrupted run's checkpoint",
      'the half-done attempt left its scratch folder',
    );
    assert.deepEqual(rec.continuedFrom, { epoch: 2, key: firstKey });
    const stored = unsealJson(readFileSync(join(ws, '.facepipe/store/stages', `${rec.key}.json`), 'utf8'));
    assert.ok(stored.ok);
    assert.deepEqual((stored.value as { continuedFrom?: unknown }).continuedFrom, { epoch: 2, key: firstKey });

    assert.deepEqual(model(ws), model(fresh), 'continued and from-scratch models are byte-identical');
    assert.equal(key4.key, rec.key, 'one key, one result');
    await lowerAndCollect(ws);
  } finally {
    removeWorkspace(ws);
    removeWorkspace(fresh);
  }
});

/** Lowering epochs trains from scratch; gc keeps the states of kept results; --drop-epoch-states drops them all. */
async function lowerAndCollect(ws: string): Promise<void> {
  // Lowering epochs finds no state at or below 1: it trains from scratch (the state at 2 is above it).
  const fewer = parseStatus((await status(ws, '--set', 'triarchy.epochs=1')).stdout);
  assert.equal(fewer.triarchy.reason, 'params changed: triarchy.epochs 4 -> 1');

  // gc keeps the state of a kept result and drops one whose result went (--keep-last 1 drops the first run).
  const states = () =>
    listFiles(join(ws, '.facepipe/store/epochs'))
      .filter((f) => readFileSync(join(ws, '.facepipe/store/epochs', f), 'utf8').includes('"stage": "triarchy"'))
      .map((f) => f.split('/')[1]);
  assert.deepEqual(states().sort(), ['2.json', '4.json']);
  const gc = await runCli(ws, ['gc', '--keep-last', '1']);
  assert.equal(gc.code, 0, gc.stderr);
  // pretext's state (its result is kept) stays too.
  assert.match(gc.stdout, /epoch states: kept 2 \(their stage results are kept\), removed 1/);
  assert.deepEqual(states(), ['4.json']);
  const six = parseStatus((await status(ws, '--set', 'triarchy.epochs=6')).stdout);
  assert.equal(six.triarchy.reason, 'epochs 4 -> 6, continuing from the cached epoch 4');
  // The state's objects survived gc: the continuation verifies them.
  const cont = await run(ws, '--set', 'triarchy.epochs=6');
  assert.equal(cont.code, 0, cont.stderr);
  assert.deepEqual(trainedEpochs(cont.events), [5, 6]);
  const drop = await runCli(ws, ['gc', '--drop-epoch-states']);
  assert.equal(drop.code, 0, drop.stderr);
  assert.deepEqual(states(), []);
  assert.equal(
    parseStatus((await status(ws, '--set', 'triarchy.epochs=8')).stdout).triarchy.reason,
    'params changed: triarchy.epochs 6 -> 8',
  );
}

test('a damaged or misfiled epoch state is not used: warned, and training starts from epoch 0', async () => {
  const ws = faceWorkspace();
  try {
    assert.equal((await run(ws)).code, 0);
    const dir = join(ws, '.facepipe/store/epochs');
    const [prefix] = readdirSync(dir).filter((p) => existsSync(join(dir, p, '2.json')));
    const file = join(dir, prefix, '2.json');
    // Filed under another epoch: its own content says 2, so it is refused as the state at 3.
    cpSync(file, join(dir, prefix, '3.json'));
    writeFileSync(file, readFileSync(file, 'utf8').replace('"epoch": 2', '"epoch": 1'));
    const plan = await status(ws, '--set', 'triarchy.epochs=4');
    assert.equal(parseStatus(plan.stdout).triarchy.reason, 'params changed: triarchy.epochs 2 -> 4');
    assert.match(
      plan.stderr,
      /ignoring \.facepipe\/store\/epochs\/[0-9a-f]{64}\/3\.json: its content has the wrong shape/,
    );
    assert.match(
      plan.stderr,
      /ignoring .*\/2\.json: its content does not match its digest; that epoch is trained again/,
    );
    const r = await run(ws, '--set', 'triarchy.epochs=4');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(trainedEpochs(r.events), [1, 2, 3, 4]);
    assert.ok(existsSync(join(dir, prefix, '4.json')));
  } finally {
    removeWorkspace(ws);
  }
});

test('with a schedule that depends on epochs (cosine) no cached epoch is reused, and status says why', async () => {
  const ws = faceWorkspace();
  try {
    const cos = ['--set', 'triarchy.optimizer.schedule=cosine'];
    const first = await run(ws, ...cos);
    assert.equal(first.code, 0, first.stderr);
    const kept = listFiles(join(ws, '.facepipe/store/epochs')).map((f) =>
      readFileSync(join(ws, '.facepipe/store/epochs', f), 'utf8'),
    );
    assert.ok(
      kept.every((t) => !t.includes('"stage": "triarchy"')),
      'no triarchy state is kept: none could be used',
    );
    const plan = parseStatus((await status(ws, ...cos, '--set', 'triarchy.epochs=4')).stdout);
    assert.equal(
      plan.triarchy.reason,
      'params changed: triarchy.epochs 2 -> 4; no cached epoch reused: optimizer.schedule cosine depends on the epoch count',
    );
    const more = await run(ws, ...cos, '--set', 'triarchy.epochs=4');
    assert.equal(more.code, 0, more.stderr);
    assert.deepEqual(trainedEpochs(more.events), [1, 2, 3, 4]);
    assert.equal(lastRun(ws).stages.find((s) => s.stage === 'triarchy')!.continuedFrom, undefined);
    assert.deepEqual(finalStates(more.events).triarchy, 'done');
  } finally {
    removeWorkspace(ws);
  }
});
