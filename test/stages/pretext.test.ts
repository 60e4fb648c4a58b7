import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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
    const last = ctx.reports.at(-1)!;
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
