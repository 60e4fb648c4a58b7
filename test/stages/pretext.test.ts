import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ImageCache } from '../../src/ml/data/cache.js';
import type { TrainableNet } from '../../src/ml/types.js';
import { readSplits } from '../../src/stages/shared/splits-format.js';
import {
  CHANCE_MARGIN,
  centerCrop,
  chanceOf,
  chanceWarning,
  heldoutFigures,
  heldoutSet,
} from '../../src/stages/pretext/heldout.js';
import { kind } from '../../src/stages/pretext/kind.js';
import { rotateBatch, run } from '../../src/stages/pretext/run.js';
import { CMU_FACES, fakeContext } from './fake-context.js';
import { TINY_BACKBONE, tinySplits } from './face-fixture.js';

const params = { backbone: TINY_BACKBONE, epochs: 1, batch_size: 8, augment: { resize: 36 } };

test('rotateBatch turns square images by quarter turns (counter-clockwise)', () => {
  // One 2x2 image, channel value = pixel id: [[0, 1], [2, 3]].
  const img = new Float32Array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
  const first = (k: number) => Array.from(rotateBatch(img, 1, 2, [k])).filter((_, i) => i % 3 === 0);
  assert.deepEqual(first(0), [0, 1, 2, 3]);
  assert.deepEqual(first(1), [1, 3, 0, 2]);
  assert.deepEqual(first(2), [3, 2, 1, 0]);
  assert.deepEqual(first(3), [2, 0, 3, 1]);
});

test('pretext: attribute task on pose + expression writes the backbone', async () => {
  const ctx = fakeContext(kind, params, { dataset: CMU_FACES(), splits: await tinySplits(true) });
  try {
    await run(ctx);
    assert.equal(ctx.recorded.task, 'attributes');
    assert.equal(ctx.recorded.backend, 'wasm');
    assert.ok(Number.isFinite(ctx.recorded.loss));
    assert.ok(
      ctx.logs.some((l) => /pose 4 classes, expression 4 classes/.test(l)),
      ctx.logs.join('\n'),
    );
    // Its steps as a bar: numbered over all epochs up to the total it announces.
    const steps = ctx.reports.flatMap((r) => (r.kind === 'steps' ? [r.step] : []));
    const last = ctx.reports.filter((r) => r.kind === 'steps').at(-1)!;
    assert.ok(last.kind === 'steps' && steps.length === last.total, JSON.stringify(last));
    assert.deepEqual(
      steps,
      steps.map((_, i) => i + 1),
    );
    const model = JSON.parse(readFileSync(join(ctx.outputs.backbone, 'model.json'), 'utf8'));
    assert.equal(model.modelTopology.facepipe.kind, 'backbone');
    assert.equal(model.modelTopology.facepipe.backbone.inputSize, 32);
    // Same inputs and params, same weights (the cache relies on it).
    const again = fakeContext(kind, params, { dataset: CMU_FACES(), splits: await tinySplits(true) });
    await run(again);
    assert.deepEqual(
      readFileSync(join(again.outputs.backbone, 'weights.bin')),
      readFileSync(join(ctx.outputs.backbone, 'weights.bin')),
    );
    again.cleanup();
  } finally {
    ctx.cleanup();
  }
});

test('pretext: without attributes it falls back to rotation; task attributes then fails clearly', async () => {
  const splits = await tinySplits(false);
  const ctx = fakeContext(kind, params, { dataset: CMU_FACES(), splits });
  try {
    await run(ctx);
    assert.equal(ctx.recorded.task, 'rotation');
    assert.ok(ctx.logs.some((l) => /rotation 4 classes/.test(l)));
  } finally {
    ctx.cleanup();
  }
  const strict = fakeContext(kind, { ...params, task: 'attributes' }, { dataset: CMU_FACES(), splits });
  try {
    await assert.rejects(run(strict), /attributes pose, expression are missing from train.csv.*attribute_pattern/);
  } finally {
    strict.cleanup();
  }
});

test('held-out helpers: chance is the most common class; the centre crop; the warning names the flat heads', () => {
  assert.equal(chanceOf([0, 1, 1, 2, -1, -1]), 0.5, 'unscored (-1) labels are not counted');
  assert.equal(chanceOf([]), 0);
  // A 4x4 image, value = pixel index, cropped to its centre 2x2.
  const data = new Uint8Array(48).map((_, i) => Math.floor(i / 3));
  const c = centerCrop({ width: 4, height: 4, data }, 2);
  assert.deepEqual(
    Array.from(c.filter((_, i) => i % 3 === 0)).map((v) => Math.round(v * 255)),
    [5, 6, 9, 10],
  );
  const figs = {
    pose: { accuracy: 0.27, chance: 0.25, n: 94 },
    expression: { accuracy: 0.25 + CHANCE_MARGIN + 0.01, chance: 0.25, n: 94 },
  };
  assert.equal(
    chanceWarning(figs),
    'pretext learned nothing: pose 0.27, chance 0.25 (held-out images of the validation identities)',
  );
  assert.equal(chanceWarning({ pose: { accuracy: 0.8, chance: 0.25, n: 10 } }), undefined);
});

test('heldoutFigures: a net that always answers one class scores its share, no better than chance', async () => {
  const splits = await readSplits(await tinySplits(true));
  const images = splits.validationImages!;
  assert.ok(images.length > 0, "the split lists the validation identities' images");
  const poses = [...new Set(splits.train.map((t) => t.attributes.pose))].sort();
  const set = heldoutSet(images, { pose: poses });
  // Inference mode, no learning: logits favour class 0 whatever the image.
  const constant: TrainableNet = {
    apply: (x: tf.Tensor4D) => ({ logits_pose: tf.tile(tf.tensor2d([[3, 0, 0, 0]]), [x.shape[0], 1]) }),
  } as unknown as TrainableNet;
  const o = { root: CMU_FACES(), resize: 36, size: 32, cache: new ImageCache(), rotate: rotateBatch, batchSize: 5 };
  const figs = await heldoutFigures(constant, set, ['pose'], o);
  const share = set.labels.pose.filter((l) => l === 0).length / images.length;
  assert.equal(figs.pose.n, images.length);
  assert.ok(Math.abs(figs.pose.accuracy - share) < 1e-12, `${figs.pose.accuracy} vs ${share}`);
  assert.ok(figs.pose.accuracy <= figs.pose.chance);
  assert.match(chanceWarning(figs)!, /^pretext learned nothing: pose/);
  // Rotation: every image at each quarter turn, chance 1/4; a net answering "0 turns" is right on a quarter.
  const rot: TrainableNet = {
    apply: (x: tf.Tensor4D) => ({ logits_rotation: tf.tile(tf.tensor2d([[1, 0, 0, 0]]), [x.shape[0], 1]) }),
  } as unknown as TrainableNet;
  const r = await heldoutFigures(rot, heldoutSet(images, null), ['rotation'], o);
  assert.deepEqual(r.rotation, { accuracy: 0.25, chance: 0.25, n: 4 * images.length });
});

test('pretext: held-out accuracy per head next to chance, each epoch, in the metrics, the log and training.json', async () => {
  const p = { ...params, epochs: 2 };
  const splits = await tinySplits(true);
  const held = (await readSplits(splits)).validationImages!.length;
  const ctx = fakeContext(kind, p, { dataset: CMU_FACES(), splits });
  try {
    await run(ctx);
    const m = ctx.recorded;
    assert.equal(m.heldout_images, held);
    for (const h of ['pose', 'expression']) {
      const acc = m[`heldout_${h}`] as number;
      const chance = m[`chance_${h}`] as number;
      assert.ok(acc >= 0 && acc <= 1 && chance >= 0.25 && chance < 1, `${h}: ${acc} vs chance ${chance}`);
    }
    const lines = ctx.logs.filter((l) =>
      /^held-out accuracy after epoch \d: pose \d\.\d\d \(chance \d\.\d\d\), expression/.test(l),
    );
    assert.equal(lines.length, 2, ctx.logs.join('\n'));
    const validations = ctx.reports.filter((r) => r.kind === 'validation');
    assert.deepEqual(
      validations.map((v) => v.epoch),
      [1, 2],
    );
    assert.deepEqual(Object.keys(validations[0].metrics), ['pose', 'pose chance', 'expression', 'expression chance']);
    // The warning says so exactly when a head ends within CHANCE_MARGIN of chance.
    const flat = ['pose', 'expression'].filter(
      (h) => (m[`heldout_${h}`] as number) < (m[`chance_${h}`] as number) + CHANCE_MARGIN,
    );
    const warning = ctx.logs.find((l) => l.startsWith('warning: pretext learned nothing'));
    assert.equal(!!warning, flat.length > 0, `${warning} / ${flat}`);
    for (const h of flat) assert.match(warning!, new RegExp(`${h} \\d\\.\\d\\d, chance`));
    const training = JSON.parse(readFileSync(join(ctx.outputs.backbone, 'training.json'), 'utf8'));
    assert.equal(training.task, 'attributes');
    assert.equal(training.heldout_images, held);
    assert.deepEqual(
      training.validations.map((v: { epoch: number }) => v.epoch),
      [1, 2],
    );
    assert.equal(training.validations[1].pose, m.heldout_pose);
    assert.equal(training.losses.length, 2);
  } finally {
    ctx.cleanup();
  }
});

test('pretext: the rotation task reports the same figures (chance 0.25 over 4 turns of each held-out image)', async () => {
  const splits = await tinySplits(false);
  const held = (await readSplits(splits)).validationImages!.length;
  const ctx = fakeContext(kind, params, { dataset: CMU_FACES(), splits });
  try {
    await run(ctx);
    assert.equal(ctx.recorded.task, 'rotation');
    assert.equal(ctx.recorded.chance_rotation, 0.25);
    assert.equal(ctx.recorded.heldout_images, held);
    assert.equal(typeof ctx.recorded.heldout_rotation, 'number');
    assert.ok(ctx.logs.some((l) => /^held-out accuracy after epoch 1: rotation \d\.\d\d \(chance 0\.25\)$/.test(l)));
  } finally {
    ctx.cleanup();
  }
});

test('pretext: an interrupted run resumes to the same backbone and training.json; damaged held-out state restarts it', async () => {
  const inputs = { dataset: CMU_FACES(), splits: await tinySplits(true) };
  const p = { ...params, epochs: 3 };
  const straight = fakeContext(kind, p, inputs);
  const controller = new AbortController();
  const interrupted = fakeContext(kind, p, inputs, { signal: controller.signal });
  try {
    await run(straight);
    const report = interrupted.report.bind(interrupted);
    interrupted.report = (r) => {
      report(r);
      if (r.kind === 'steps' && r.epoch === 3) controller.abort(new Error('test interrupt'));
    };
    await assert.rejects(run(interrupted), /aborted/);
    const resumed = fakeContext(kind, p, inputs, { root: join(interrupted.workDir, '..') });
    await run(resumed);
    assert.ok(
      resumed.logs.every((l) => !/held-out accuracy after epoch [12]:/.test(l)),
      'epochs 1-2 were measured before',
    );
    for (const f of ['weights.bin', 'training.json'])
      assert.deepEqual(
        readFileSync(join(resumed.outputs.backbone, f)),
        readFileSync(join(straight.outputs.backbone, f)),
        `${f} differs after resume`,
      );
    // A damaged held-out state is not trusted: the stage restarts from scratch and still gives the same result.
    const damaged = fakeContext(kind, p, inputs, { signal: controller.signal });
    writeFileSync(join(damaged.workDir, 'heldout.json'), '{"format":"facepipe-sealed-1","digest":"0","value":{}}');
    const fresh = fakeContext(kind, p, inputs, { root: join(damaged.workDir, '..') });
    await run(fresh);
    assert.ok(fresh.logs.some((l) => /warning: ignoring .*heldout\.json: .*restarts from scratch/.test(l)));
    assert.deepEqual(
      readFileSync(join(fresh.outputs.backbone, 'training.json')),
      readFileSync(join(straight.outputs.backbone, 'training.json')),
    );
    damaged.cleanup();
  } finally {
    straight.cleanup();
    interrupted.cleanup();
  }
});

test('pretext: a split from before validation_images.csv trains, and says it cannot measure held-out accuracy', async () => {
  const old = mkdtempSync(join(tmpdir(), 'old-split-'));
  cpSync(await tinySplits(true), old, { recursive: true });
  rmSync(join(old, 'validation_images.csv'));
  const ctx = fakeContext(kind, params, { dataset: CMU_FACES(), splits: old });
  try {
    await run(ctx);
    assert.ok(
      ctx.logs.some((l) => /^warning: no held-out accuracy: the split predates validation_images\.csv/.test(l)),
      ctx.logs.join('\n'),
    );
    assert.equal(ctx.recorded.heldout_pose, undefined);
    assert.equal(ctx.reports.filter((r) => r.kind === 'validation').length, 0);
  } finally {
    ctx.cleanup();
    rmSync(old, { recursive: true, force: true });
  }
});
