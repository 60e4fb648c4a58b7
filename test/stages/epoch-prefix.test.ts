// Epoch-prefix reuse at the kind level: the state a shorter run leaves (ctx.epochState.out), put in a longer run's
// scratch folder as the job side does, gives the bytes of a straight run of the longer one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { unsealJson } from '../../src/core/sealed.js';
import { cosineLr } from '../../src/ml/train/schedule.js';
import { kind as pretextKind } from '../../src/stages/pretext/kind.js';
import { run as pretextRun } from '../../src/stages/pretext/run.js';
import { kind } from '../../src/stages/triarchy/kind.js';
import { run, validationEpochs } from '../../src/stages/triarchy/run.js';
import { CMU_FACES, fakeContext, type FakeContext } from './fake-context.js';
import { TINY_BACKBONE, tinySplits, tinyTriarchyParams } from './face-fixture.js';
import type { TriarchyParams } from '../../src/stages/triarchy/kind.js';

const MODEL_FILES = ['weights.bin', 'training.json', 'model.json'];

function withEpochState<P>(ctx: FakeContext<P>): { out: string; restarts: () => number } {
  const out = join(ctx.workDir, '..', 'epoch-state-out');
  mkdirSync(out, { recursive: true });
  let restarts = 0;
  ctx.epochState = { out, restarted: () => void restarts++ };
  return { out, restarts: () => restarts };
}

const selectionOf = (dir: string) =>
  (
    unsealJson(readFileSync(join(dir, 'selection.json'), 'utf8')) as {
      ok: true;
      value: { state: { lastValidated: number; validations: Array<{ epoch: number }> }; bestDir: string };
    }
  ).value;

for (const [short, long, every] of [
  [3, 6, 2],
  [2, 4, 2],
] as const) {
  test(`triarchy: ${long} epochs continued from the state at ${short} (validate_every ${every}) = a straight ${long}-epoch run`, async () => {
    const inputs = { dataset: CMU_FACES(), splits: await tinySplits() };
    const params = (epochs: number) => ({
      ...tinyTriarchyParams,
      init: 'scratch',
      epochs,
      validate_every: every,
      backbone: { ...tinyTriarchyParams.backbone, drop_connect: 0.2 },
    });
    const straight = fakeContext(kind, params(long), inputs);
    const first = fakeContext(kind, params(short), inputs);
    const continued = fakeContext(kind, params(long), inputs);
    try {
      await run(straight);
      const state = withEpochState(first);
      await run(first);
      // The snapshot: the checkpoint at `short`, and only the validations a longer run makes up to there.
      assert.deepEqual(readdirSync(join(state.out, 'checkpoint')), ['epoch-checkpoint.fpck']);
      const sel = selectionOf(state.out);
      const regular = Array.from({ length: Math.floor(short / every) }, (_, i) => (i + 1) * every);
      assert.deepEqual(
        sel.state.validations.map((v) => v.epoch),
        regular,
      );
      assert.ok(readdirSync(state.out).includes(sel.bestDir), 'the best weights it names are in it');
      // What the job side does: the snapshot goes into the longer run's empty scratch folder.
      cpSync(state.out, continued.workDir, { recursive: true });
      await run(continued);
      const steps = continued.reports.flatMap((r) => (r.kind === 'steps' ? [r] : []));
      assert.equal(steps[0].epoch, short + 1, 'training goes on after the cached epoch');
      assert.deepEqual(
        continued.reports.flatMap((r) => (r.kind === 'validation' ? [r.epoch] : [])),
        validationEpochs(long, every).filter((e) => e > (regular.at(-1) ?? 0)),
        'only the validations after the cached ones',
      );
      for (const f of MODEL_FILES)
        assert.deepEqual(
          readFileSync(join(continued.outputs.model, f)),
          readFileSync(join(straight.outputs.model, f)),
          `${f} differs from a straight run`,
        );
    } finally {
      straight.cleanup();
      first.cleanup();
      continued.cleanup();
    }
  });
}

test('triarchy: a damaged epoch state in the scratch folder is not trusted: restart from scratch, said, same bytes', async () => {
  const inputs = { dataset: CMU_FACES(), splits: await tinySplits() };
  const params = (epochs: number) => ({ ...tinyTriarchyParams, init: 'scratch', epochs, validate_every: 1 });
  const straight = fakeContext(kind, params(3), inputs);
  const first = fakeContext(kind, params(2), inputs);
  const continued = fakeContext(kind, params(3), inputs);
  try {
    await run(straight);
    const state = withEpochState(first);
    await run(first);
    cpSync(state.out, continued.workDir, { recursive: true });
    const sel = selectionOf(continued.workDir);
    const f = join(continued.workDir, sel.bestDir, 'weights.bin');
    const b = readFileSync(f);
    b[3] ^= 1;
    writeFileSync(f, b);
    const seen = withEpochState(continued);
    await run(continued);
    assert.ok(continued.logs.some((l) => /are not the ones it names; the stage restarts from scratch/.test(l)));
    assert.equal(seen.restarts(), 1, 'the job side is told, so the record claims no continuation');
    for (const name of MODEL_FILES)
      assert.deepEqual(
        readFileSync(join(continued.outputs.model, name)),
        readFileSync(join(straight.outputs.model, name)),
      );
  } finally {
    straight.cleanup();
    first.cleanup();
    continued.cleanup();
  }
});

test('pretext: 5 epochs continued from the state at 3 (held-out every 2) = a straight 5-epoch run', async () => {
  const inputs = { dataset: CMU_FACES(), splits: await tinySplits(true) };
  const params = (epochs: number) => ({
    backbone: { ...TINY_BACKBONE, drop_connect: 0.2 },
    epochs,
    batch_size: 8,
    augment: { resize: 36 },
    validate_every: 2,
  });
  const straight = fakeContext(pretextKind, params(5), inputs);
  const first = fakeContext(pretextKind, params(3), inputs);
  const continued = fakeContext(pretextKind, params(5), inputs);
  try {
    await pretextRun(straight);
    const state = withEpochState(first);
    await pretextRun(first);
    const held = unsealJson(readFileSync(join(state.out, 'heldout.json'), 'utf8'));
    assert.ok(held.ok);
    assert.deepEqual(
      (held.value as { measured: Array<{ epoch: number }> }).measured.map((m) => m.epoch),
      [2],
      'only the epochs a longer run measures too',
    );
    cpSync(state.out, continued.workDir, { recursive: true });
    await pretextRun(continued);
    const steps = continued.reports.flatMap((r) => (r.kind === 'steps' ? [r] : []));
    assert.equal(steps[0].epoch, 4, 'training goes on after the cached epoch');
    for (const f of ['weights.bin', 'training.json'])
      assert.deepEqual(
        readFileSync(join(continued.outputs.backbone, f)),
        readFileSync(join(straight.outputs.backbone, f)),
        `${f} differs from a straight run`,
      );
  } finally {
    straight.cleanup();
    first.cleanup();
    continued.cleanup();
  }
});

test('cosine annealing goes from lr to near 0 over all epochs, so it depends on the epoch count', () => {
  assert.equal(cosineLr(0.1, 1, 10), 0.1);
  assert.ok(Math.abs(cosineLr(0.1, 6, 10) - 0.05) < 1e-12);
  assert.notEqual(cosineLr(0.1, 6, 10), cosineLr(0.1, 6, 20));
});

test('the cosine schedule blocks epoch-prefix reuse; multistep does not', () => {
  assert.equal(pretextKind.epochPrefix!.blocker!({ optimizer: { schedule: 'cosine' } } as never) !== undefined, true);
  const blocker = kind.epochPrefix!.blocker!;
  const p = (schedule: string) => ({ optimizer: { schedule } }) as unknown as TriarchyParams;
  assert.equal(blocker(p('multistep')), undefined);
  assert.match(blocker(p('cosine'))!, /cosine depends on the epoch count/);
  assert.equal(kind.epochPrefix!.param, 'epochs');
});
