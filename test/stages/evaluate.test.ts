import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { kind } from '../../src/stages/evaluate/kind.js';
import { run } from '../../src/stages/evaluate/run.js';
import { bestThreshold } from '../../src/ml/eval/metrics.js';
import { pairsCsv, readSplits } from '../../src/stages/shared/splits-format.js';
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
    for (const key of ['accuracy_median', 'accuracy_threshold', 'auc', 'eer']) {
      assert.ok(m.test[key] >= 0 && m.test[key] <= 1, `${key} = ${m.test[key]}`);
    }
    // A dozen pairs cannot measure TAR at FAR 1e-2 or below: null, with the reason, and no figure recorded.
    assert.equal(m.test.different_pairs, splits.test.filter((x) => x.different).length);
    for (const [key, needed] of [
      ['tar_at_far_1e2', 100],
      ['tar_at_far_1e3', 1000],
      ['tar_at_far_1e4', 10000],
    ] as const) {
      assert.equal(m.test[key], null, key);
      assert.ok(
        m.test.notes.includes(
          `${key} is null: ${m.test.different_pairs} different-person pairs, fewer than 1/FAR = ${needed}`,
        ),
        m.test.notes.join('; '),
      );
      assert.equal(a.recorded[key], undefined);
    }
    assert.equal(m.protocol, null);
    assert.equal(m.test.lfw10, undefined);
    assert.match(m.threshold.source, /equal error rate/);
    assert.equal(a.recorded.accuracy, Number(m.test.accuracy_threshold.toFixed(4)));
    assert.equal(a.recorded.params, m.params);

    // predictions.csv: header image1,image2,label,distance; rows in test.csv order; label 1 = different, which is
    // distance > the validation threshold; agreement with the truth equals the reported threshold accuracy.
    const lines = readFileSync(join(report, 'predictions.csv'), 'utf8').trim().split('\n');
    assert.equal(lines[0], 'image1,image2,label,distance');
    assert.equal(lines.length - 1, splits.test.length);
    let agree = 0;
    const distances = lines.slice(1).map((line, i) => {
      const [i1, i2, label, distance] = line.split(',');
      assert.equal(i1, splits.test[i].image1);
      assert.equal(i2, splits.test[i].image2);
      const d = Number(distance);
      assert.equal(label, d > m.threshold.value ? '1' : '0', `row ${i + 1}: label follows the distance`);
      if ((label === '1') === splits.test[i].different) agree++;
      return d;
    });
    assert.equal(agree / splits.test.length, m.test.accuracy_threshold);
    // The fixture's model responds to its input: different images, different embeddings (not float noise), so the
    // figures above are computed on real distances.
    const sorted = [...distances].sort((x, y) => x - y);
    assert.ok(sorted[0] > 1e-3, `smallest test distance ${sorted[0]}: embeddings of different images must differ`);
    assert.ok(
      sorted.at(-1)! - sorted[0] > 0.1 * sorted.at(-1)!,
      `test distances ${sorted[0]}..${sorted.at(-1)} should spread`,
    );
    const n = sorted.length;
    const med = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    assert.equal(m.test.median_threshold, med, 'the median rule uses these distances');

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

    // The median rule predicts half of an even, balanced set as different, fewer when distances tie at the
    // median: the tiny fixture's eval-mode embeddings are near collapse (distances ~1e-9, float-rounding ties).
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
      .filter((l) => l.split(',')[2] === '1').length;
    assert.equal(ones, splits.test.length / 2);
  } finally {
    a.cleanup();
    b.cleanup();
  }
});

test("evaluate: protocol lfw10: 10-fold accuracy (threshold from the other 9 folds), the pairs file's folds or dealt ones", async () => {
  const splitsDir = await tinySplits();
  const splits = await readSplits(splitsDir);
  // The same splits with the test pairs in 10 folds, as an LFW pairs.txt gives them; and with 5 folds.
  const withFolds = (k: number) => {
    const dir = mkdtempSync(join(tmpdir(), 'splits-folds-'));
    cpSync(splitsDir, dir, { recursive: true });
    const test = splits.test.map((x, i) => ({ ...x, fold: (i % k) + 1 }));
    writeFileSync(join(dir, 'test.csv'), pairsCsv(test));
    return { dir, test };
  };
  const ten = withFolds(10);
  const five = withFolds(5);
  const inputs = { model: await tinyPruned(), dataset: CMU_FACES() };
  const dealt = fakeContext(kind, { protocol: 'lfw10' }, { ...inputs, splits: splitsDir });
  const given = fakeContext(kind, { protocol: 'lfw10' }, { ...inputs, splits: ten.dir });
  const wrong = fakeContext(kind, { protocol: 'lfw10' }, { ...inputs, splits: five.dir });
  try {
    await run(dealt);
    await run(given);
    const metrics = (ctx: typeof dealt) => JSON.parse(readFileSync(join(ctx.outputs.report, 'metrics.json'), 'utf8'));
    const md = metrics(dealt);
    const mg = metrics(given);
    assert.equal(md.protocol, 'lfw10');
    assert.match(md.test.lfw10.fold_source, /^assigned/);
    assert.match(mg.test.lfw10.fold_source, /pairs file/);
    const distances = readFileSync(join(given.outputs.report, 'predictions.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => Number(l.split(',')[3]));
    const labels = ten.test.map((x) => x.different);
    for (const [m, ctx] of [
      [md, dealt],
      [mg, given],
    ] as const) {
      const r = m.test.lfw10;
      assert.equal(r.folds, 10);
      assert.equal(r.per_fold.length, 10);
      assert.equal(
        r.per_fold.reduce((a: number, f: { pairs: number }) => a + f.pairs, 0),
        splits.test.length,
      );
      const accs = r.per_fold.map((f: { accuracy: number }) => f.accuracy);
      const mean = accs.reduce((a: number, b: number) => a + b, 0) / 10;
      assert.ok(Math.abs(r.accuracy_mean - mean) < 1e-12);
      const std = Math.sqrt(accs.reduce((a: number, x: number) => a + (x - mean) ** 2, 0) / 9);
      assert.ok(Math.abs(r.accuracy_std - std) < 1e-12);
      assert.ok(Math.abs(r.standard_error - std / Math.sqrt(10)) < 1e-12);
      // Next to AUC and EER of the whole test set, in the run record too.
      assert.equal(typeof m.test.auc, 'number');
      assert.equal(ctx.recorded.lfw10_accuracy, Number(r.accuracy_mean.toFixed(4)));
      assert.equal(ctx.recorded.lfw10_std, Number(r.accuracy_std.toFixed(4)));
    }
    // With the pairs file's folds: fold k's threshold maximises accuracy on the other 9 folds, and is applied to k.
    for (const f of mg.test.lfw10.per_fold as Array<{ fold: number; threshold: number; accuracy: number }>) {
      const other = ten.test.map((x, i) => i).filter((i) => ten.test[i].fold !== f.fold);
      const held = ten.test.map((x, i) => i).filter((i) => ten.test[i].fold === f.fold);
      const best = bestThreshold(
        other.map((i) => distances[i]),
        other.map((i) => labels[i]),
      );
      assert.ok(Math.abs(best.threshold - f.threshold) < 1e-9 * Math.max(1, f.threshold), `fold ${f.fold} threshold`);
      const right = held.filter((i) => distances[i] > f.threshold === labels[i]).length;
      assert.equal(f.accuracy, right / held.length, `fold ${f.fold} accuracy`);
    }
    await assert.rejects(run(wrong), /evaluate\.protocol lfw10 needs 10 folds; the test pairs have 5 folds/);
  } finally {
    for (const ctx of [dealt, given, wrong]) ctx.cleanup();
    for (const d of [ten.dir, five.dir]) rmSync(d, { recursive: true, force: true });
  }
});
