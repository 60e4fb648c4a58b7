import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { kind } from '../../src/stages/evaluate/kind.js';
import { run } from '../../src/stages/evaluate/run.js';
import { readSplits } from '../../src/stages/shared/splits-format.js';
import { CMU_FACES, fakeContext } from './fake-context.js';
import { tinyPruned, tinySplits } from './face-fixture.js';

test('evaluate: metrics.json, predictions in the original format, ROC PNG; deterministic', async () => {
  const inputs = { model: await tinyPruned(), dataset: CMU_FACES(), splits: await tinySplits() };
  const a = fakeContext(kind, {}, inputs);
  const b = fakeContext(kind, { predictions_rule: 'median', flip_average: true, threshold_rule: 'accuracy' }, inputs);
  try {
    await run(a);
    const splits = await readSplits(inputs.splits);
    const report = a.outputs.report;
    const m = JSON.parse(readFileSync(join(report, 'metrics.json'), 'utf8'));
    assert.equal(m.test.pairs, splits.test.length);
    assert.equal(m.validation.pairs, splits.validation.length);
    assert.equal(m.threshold.value, m.test.threshold);
    for (const key of ['accuracy_median', 'accuracy_threshold', 'auc', 'eer', 'tar_at_far_1e2', 'tar_at_far_1e3']) {
      assert.ok(m.test[key] >= 0 && m.test[key] <= 1, `${key} = ${m.test[key]}`);
    }
    assert.match(m.threshold.source, /equal error rate/);
    assert.equal(a.recorded.accuracy, Number(m.test.accuracy_threshold.toFixed(4)));
    assert.equal(a.recorded.params, m.params);

    // predictions.csv: header image1,image2,label; rows in test.csv order; label 1 = different;
    // agreement with the truth equals the reported threshold accuracy.
    const lines = readFileSync(join(report, 'predictions.csv'), 'utf8').trim().split('\n');
    assert.equal(lines[0], 'image1,image2,label');
    assert.equal(lines.length - 1, splits.test.length);
    let agree = 0;
    lines.slice(1).forEach((line, i) => {
      const [i1, i2, label] = line.split(',');
      assert.equal(i1, splits.test[i].image1);
      assert.equal(i2, splits.test[i].image2);
      assert.ok(label === '0' || label === '1');
      if ((label === '1') === splits.test[i].different) agree++;
    });
    assert.equal(agree / splits.test.length, m.test.accuracy_threshold);

    const png = await sharp(join(report, 'roc.png')).metadata();
    assert.equal(png.format, 'png');
    const roc = JSON.parse(readFileSync(join(report, 'roc.json'), 'utf8'));
    for (const set of ['test', 'validation']) {
      assert.equal(roc[set].far.length, roc[set].tar.length);
      assert.equal(roc[set].far[0], 0);
      assert.equal(roc[set].far.at(-1), 1);
      assert.equal(roc[set].tar.at(-1), 1);
    }

    // Same inputs, same outputs (the cache relies on it).
    const again = fakeContext(kind, {}, inputs);
    await run(again);
    for (const f of ['metrics.json', 'predictions.csv', 'roc.png', 'roc.json']) {
      assert.deepEqual(readFileSync(join(again.outputs.report, f)), readFileSync(join(report, f)), f);
    }
    again.cleanup();

    // The median rule predicts exactly half of an even, balanced set as different.
    await run(b);
    const mb = JSON.parse(readFileSync(join(b.outputs.report, 'metrics.json'), 'utf8'));
    assert.equal(mb.flip_average, true);
    // The accuracy rule's threshold is the best possible one on validation.
    assert.ok(mb.validation.accuracy_threshold >= mb.validation.accuracy_median);
    assert.match(mb.threshold.source, /maximum accuracy/);
    const ones = readFileSync(join(b.outputs.report, 'predictions.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .filter((l) => l.endsWith(',1')).length;
    assert.equal(ones, splits.test.length / 2);
  } finally {
    a.cleanup();
    b.cleanup();
  }
});
