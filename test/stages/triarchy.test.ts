import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHECKPOINT_FILE } from '../../src/ml/train/checkpoint.js';
import { kind } from '../../src/stages/triarchy/kind.js';
import { run, validationEpochs } from '../../src/stages/triarchy/run.js';
import { CMU_FACES, fakeContext } from './fake-context.js';
import { tinyPretext, tinySplits, tinyTriarchyParams } from './face-fixture.js';

test('validationEpochs: every N epochs and after the last', () => {
  assert.deepEqual(validationEpochs(25, 10), [10, 20, 25]);
  assert.deepEqual(validationEpochs(20, 10), [10, 20]);
  assert.deepEqual(validationEpochs(3, 1), [1, 2, 3]);
  assert.deepEqual(validationEpochs(0, 10), [0]);
});

test('triarchy: from the pretext backbone, validates each epoch and keeps the best checkpoint', async () => {
  const inputs = { dataset: CMU_FACES(), splits: await tinySplits(), pretext: await tinyPretext() };
  const ctx = fakeContext(kind, tinyTriarchyParams, inputs);
  try {
    await run(ctx);
    assert.ok(ctx.logs.some((l) => /initialised \d+ backbone variables from the pretext stage/.test(l)));
    const training = JSON.parse(readFileSync(join(ctx.outputs.model, 'training.json'), 'utf8'));
    assert.deepEqual(
      training.validations.map((v: { epoch: number }) => v.epoch),
      [1, 2],
    );
    // Best = first epoch with the highest validation accuracy (strictly greater replaces).
    const accs: number[] = training.validations.map((v: { accuracy: number }) => v.accuracy);
    assert.equal(training.best_epoch, accs.indexOf(Math.max(...accs)) + 1);
    assert.equal(ctx.recorded.best_epoch, training.best_epoch);
    assert.equal(training.losses.length, 2);
    // Structured progress: every step over all epochs (a bar out of epochs x batches), and each validation.
    const steps = ctx.reports.flatMap((r) => (r.kind === 'steps' ? [r] : []));
    const total = steps[0].total;
    assert.equal(total % 2, 0, 'two epochs of the same number of batches');
    assert.deepEqual(
      steps.map((r) => r.step),
      Array.from({ length: total }, (_, i) => i + 1),
    );
    assert.ok(steps.every((r) => r.total === total && r.epochs === 2 && typeof r.loss === 'number'));
    assert.equal(steps.at(-1)!.epoch, 2);
    const validations = ctx.reports.flatMap((r) => (r.kind === 'validation' ? [r] : []));
    assert.deepEqual(
      validations.map((v) => [v.epoch, v.epochs, Object.keys(v.metrics)]),
      [
        [1, 2, ['accuracy', 'auc', 'eer']],
        [2, 2, ['accuracy', 'auc', 'eer']],
      ],
    );
    assert.equal(validations[0].best, true);
    assert.equal(validations[1].best, training.best_epoch === 2);
    assert.equal(validations[1].metrics.accuracy, training.validations[1].accuracy);
    const model = JSON.parse(readFileSync(join(ctx.outputs.model, 'model.json'), 'utf8'));
    assert.equal(model.modelTopology.facepipe.kind, 'triarchy');
    assert.equal(model.modelTopology.facepipe.numClasses, 4);
    assert.equal(model.modelTopology.facepipe.embeddingDim, 16);
  } finally {
    ctx.cleanup();
  }
});

test('triarchy: an interrupted run resumes from its epoch checkpoint to the same result', async () => {
  const inputs = { dataset: CMU_FACES(), splits: await tinySplits() };
  // Drop-connect on: its masks are seeded per step, so a resumed run must still match exactly.
  const params = {
    ...tinyTriarchyParams,
    init: 'scratch',
    epochs: 3,
    backbone: { ...tinyTriarchyParams.backbone, drop_connect: 0.2 },
  };
  const straight = fakeContext(kind, params, inputs);
  const controller = new AbortController();
  const interrupted = fakeContext(kind, params, inputs, { signal: controller.signal });
  try {
    await run(straight);
    // Abort as soon as epoch 2 starts (after epoch 1's checkpoint and validation).
    const report = interrupted.report.bind(interrupted);
    interrupted.report = (r) => {
      report(r);
      if (r.kind === 'steps' && r.epoch === 2) controller.abort(new Error('test interrupt'));
    };
    await assert.rejects(run(interrupted), /aborted/);
    const resumed = fakeContext(kind, params, inputs, { root: join(interrupted.workDir, '..') });
    await run(resumed);
    const first = resumed.reports.find((r) => r.kind === 'steps');
    assert.ok(
      first?.kind === 'steps' && first.epoch === 2 && first.step === first.total / 3 + 1,
      'steps go on from epoch 2',
    );
    assert.ok(
      resumed.logs.every((l) => !/validation after epoch 1/.test(l)),
      'epoch 1 was validated before the interruption',
    );
    for (const f of ['weights.bin', 'training.json', 'model.json']) {
      assert.deepEqual(
        readFileSync(join(resumed.outputs.model, f)),
        readFileSync(join(straight.outputs.model, f)),
        `${f} differs after resume`,
      );
    }
  } finally {
    straight.cleanup();
    interrupted.cleanup();
  }
});

test('triarchy: damaged scratch state (selection.json, best weights, epoch checkpoint) is never trusted', async () => {
  const inputs = { dataset: CMU_FACES(), splits: await tinySplits() };
  const params = { ...tinyTriarchyParams, init: 'scratch', epochs: 3 };
  const straight = fakeContext(kind, params, inputs);
  const controller = new AbortController();
  const interrupted = fakeContext(kind, params, inputs, { signal: controller.signal });
  const resumed: Array<ReturnType<typeof fakeContext>> = [];
  try {
    await run(straight);
    // Interrupted in epoch 2: the scratch holds selection.json (epoch 1 validated), best-1/ and a checkpoint.
    const report = interrupted.report.bind(interrupted);
    interrupted.report = (r) => {
      report(r);
      if (r.kind === 'steps' && r.epoch === 2) controller.abort(new Error('test interrupt'));
    };
    await assert.rejects(run(interrupted), /aborted/);
    assert.deepEqual(readdirSync(interrupted.workDir).sort(), ['best-1', 'checkpoint', 'selection.json']);
    const damages: Record<string, [(work: string) => void, RegExp]> = {
      'selection.json of garbage': [
        (w) => writeFileSync(join(w, 'selection.json'), 'garbage'),
        /ignoring .*selection\.json: not a sealed facepipe state file; the stage restarts from scratch/,
      ],
      'selection.json edited': [
        (w) =>
          writeFileSync(
            join(w, 'selection.json'),
            readFileSync(join(w, 'selection.json'), 'utf8').replace('"lastValidated":1', '"lastValidated":2'),
          ),
        /ignoring .*selection\.json: its content does not match its digest; the stage restarts from scratch/,
      ],
      'best weights edited': [
        (w) => {
          const f = join(w, 'best-1', 'weights.bin');
          const b = readFileSync(f);
          b[7] ^= 1;
          writeFileSync(f, b);
        },
        /ignoring .*selection\.json: the best weights in best-1\/ are not the ones it names; the stage restarts/,
      ],
      'one bit of the checkpoint flipped': [
        (w) => {
          const f = join(w, 'checkpoint', CHECKPOINT_FILE);
          const b = readFileSync(f);
          b[b.length - 5] ^= 0x40;
          writeFileSync(f, b);
        },
        /checkpoint .* is damaged \(its bytes do not match its digest\); removed it, training restarts from scratch/,
      ],
    };
    for (const [what, [damage, said]] of Object.entries(damages)) {
      const root = mkdtempSync(join(tmpdir(), 'triarchy-damaged-'));
      cpSync(interrupted.workDir, join(root, 'work'), { recursive: true });
      damage(join(root, 'work'));
      const ctx = fakeContext(kind, params, inputs, { root });
      resumed.push(ctx);
      await run(ctx);
      assert.ok(
        ctx.logs.some((l) => said.test(l)),
        `${what}: the stage says so (logs: ${ctx.logs.join(' | ')})`,
      );
      for (const f of ['weights.bin', 'training.json', 'model.json'])
        assert.deepEqual(
          readFileSync(join(ctx.outputs.model, f)),
          readFileSync(join(straight.outputs.model, f)),
          `${what}: ${f} is that of an uninterrupted run`,
        );
    }
  } finally {
    straight.cleanup();
    interrupted.cleanup();
    for (const c of resumed) c.cleanup();
  }
});

test('triarchy: clear errors for a missing pretext input and too few identities', async () => {
  const splits = await tinySplits();
  const a = fakeContext(kind, tinyTriarchyParams, { dataset: CMU_FACES(), splits });
  const b = fakeContext(
    kind,
    { ...tinyTriarchyParams, init: 'scratch', sampler: { identities: 5, images: 2 } },
    { dataset: CMU_FACES(), splits },
  );
  try {
    await assert.rejects(run(a), /input 'pretext' is not wired/);
    await assert.rejects(run(b), /4 training identities but triarchy.sampler.identities \(P\) is 5/);
  } finally {
    a.cleanup();
    b.cleanup();
  }
  const pretextInput = (init: string) => {
    const inputs = kind.inputs({ init } as never);
    return inputs === 'any' ? undefined : inputs.find((i) => i.name === 'pretext');
  };
  assert.equal(pretextInput('scratch')?.optional, true);
  assert.equal(pretextInput('pretext')?.optional, false);
});

test('triarchy: recalibrate_bn re-estimates BatchNorm statistics before validating', async () => {
  const inputs = { dataset: CMU_FACES(), splits: await tinySplits() };
  const params = {
    ...tinyTriarchyParams,
    init: 'scratch',
    epochs: 1,
    backbone: { ...tinyTriarchyParams.backbone, bn_momentum: 0.99 },
  };
  const plain = fakeContext(kind, params, inputs);
  const recal = fakeContext(kind, { ...params, recalibrate_bn: true }, inputs);
  try {
    await run(plain);
    await run(recal);
    assert.ok(recal.progressLines.some((l) => /re-estimating BatchNorm statistics/.test(l)));
    assert.ok(!plain.progressLines.some((l) => /re-estimating/.test(l)));
    // Same training, different moving statistics in the saved model.
    assert.notDeepEqual(
      readFileSync(join(recal.outputs.model, 'weights.bin')),
      readFileSync(join(plain.outputs.model, 'weights.bin')),
    );
  } finally {
    plain.cleanup();
    recal.cleanup();
  }
});
