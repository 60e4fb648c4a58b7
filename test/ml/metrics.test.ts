import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  accuracyAt,
  assignFolds,
  bestThreshold,
  eerThreshold,
  equalErrorRate,
  kFoldAccuracy,
  median,
  medianRule,
  pairDistances,
  predict,
  rocAuc,
  rocCurve,
  tarAtFar,
  verificationReport,
} from '../../src/ml/eval/metrics.js';

const close = (actual: number, expected: number, tol = 1e-12) =>
  assert.ok(Math.abs(actual - expected) <= tol, `expected ${expected}, got ${actual}`);

// Hand-worked example: sorted distances with labels S S D S D D (D = different, label 1).
const dist = [0.4, 0.1, 0.6, 0.3, 0.2, 0.5];
const diff = [0, 0, 1, 1, 0, 1];

test('pairDistances is the row-wise euclidean distance', () => {
  const d = pairDistances([0, 0, 1, 1], [3, 4, 1, 1], 2);
  assert.deepEqual(Array.from(d), [5, 0]);
  assert.throws(() => pairDistances([1, 2, 3], [1, 2], 2), /do not form/);
});

test('median follows numpy (mean of the middle two for an even count)', () => {
  close(median([3, 1, 2]), 2);
  close(median([4, 1, 3, 2]), 2.5);
  assert.throws(() => median([]), /empty/);
});

test('median rule: predict different when distance > median, 1 = different', () => {
  // Median 0.35: predictions for sorted S S D S D D are 0 0 0 1 1 1 -> 4 of 6 right.
  const r = medianRule(dist, diff);
  close(r.threshold, 0.35);
  close(r.accuracy, 4 / 6);
  assert.deepEqual(Array.from(predict([0.1, 0.35, 0.9], 0.35)), [0, 0, 1]);
  // Getting the polarity backwards would give 2/6.
  close(
    accuracyAt(
      dist,
      diff.map((l) => 1 - l),
      0.35,
    ),
    2 / 6,
  );
});

test('ROC points, AUC, EER and TAR@FAR on the hand-worked example', () => {
  const roc = rocCurve(dist, diff);
  assert.deepEqual(roc.far, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1]);
  assert.deepEqual(roc.tar, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1]);
  // Mann-Whitney: of the 9 (same, different) pairs, 8 have the same-person pair closer.
  close(rocAuc(roc), 8 / 9);
  // FAR = FRR = 1/3 exactly at the point (1/3, 2/3).
  close(equalErrorRate(roc), 1 / 3);
  close(tarAtFar(roc, 1e-2), 2 / 3);
  close(tarAtFar(roc, 0.5), 1);
});

test('EER is interpolated between the points bracketing FAR = FRR', () => {
  // Sorted S S D S D: 3 same, 2 different. Points (0, 2/3) and (1/2, 2/3) bracket the crossing:
  // g = FAR - FRR goes -1/3 -> 1/6, so t = 2/3 and EER = 2/3 * 1/2 = 1/3.
  const roc = rocCurve([1, 2, 3, 4, 5], [0, 0, 1, 0, 1]);
  close(equalErrorRate(roc), 1 / 3);
  close(rocAuc(roc), 5 / 6);
});

test('tied distances enter the ROC together (AUC counts ties half)', () => {
  const roc = rocCurve([1, 1, 2, 2], [0, 1, 0, 1]);
  assert.deepEqual(roc.far, [0, 0.5, 1]);
  assert.deepEqual(roc.tar, [0, 0.5, 1]);
  close(rocAuc(roc), 0.5);
  close(equalErrorRate(roc), 0.5);
  assert.throws(() => rocCurve([1, 2], [0, 0]), /both same-person and different-person/);
});

test('TAR at FAR 1e-3 allows at most one false accept in 1000', () => {
  // 10 same pairs at distances 1..10; 1000 different pairs: one at 2.5, one at 5.5, the rest at 100.
  const d: number[] = [];
  const l: number[] = [];
  for (let i = 1; i <= 10; i++) {
    d.push(i);
    l.push(0);
  }
  d.push(2.5, 5.5);
  l.push(1, 1);
  for (let i = 0; i < 998; i++) {
    d.push(100);
    l.push(1);
  }
  const roc = rocCurve(d, l);
  // FAR 0 -> TAR 0.2 (distances 1, 2); FAR 1e-3 -> TAR 0.5 (up to 5); FAR 2e-3 -> TAR 1.
  close(tarAtFar(roc, 0), 0.2);
  close(tarAtFar(roc, 1e-3), 0.5);
  close(tarAtFar(roc, 1e-2), 1);
});

test('bestThreshold maximises accuracy and prefers the candidate nearest the median', () => {
  // Sorted 1 2 3 4 5 6 with labels S S S D S D: best cut after 3 (5/6) or after 5 (5/6);
  // median is 3.5, so the midpoint 3.5 wins over 5.5.
  const r = bestThreshold([1, 2, 3, 4, 5, 6], [0, 0, 0, 1, 0, 1]);
  close(r.threshold, 3.5);
  close(r.accuracy, 5 / 6);
  // A perfectly separable set gets 100%.
  const s = bestThreshold([0.1, 0.2, 0.9, 1.0], [0, 0, 1, 1]);
  close(s.accuracy, 1);
  assert.ok(s.threshold > 0.2 && s.threshold < 0.9);
  // All-different set: threshold below everything.
  const a = bestThreshold([1, 2], [1, 1]);
  close(a.accuracy, 1);
  assert.ok(a.threshold < 1);
});

test('eerThreshold sits at the FAR = FRR point, midway to the next distance', () => {
  // Hand-worked example: at distance 0.3 FAR = FRR = 1/3; the next distance is 0.4.
  const r = eerThreshold(dist, diff);
  close(r.threshold, 0.35);
  close(r.accuracy, 4 / 6);
  // Unbalanced set: 1 same (0.1), 3 different (0.2, 0.3, 0.4): accepting only 0.1 gives FAR 0 = FRR 0.
  const u = eerThreshold([0.1, 0.2, 0.3, 0.4], [0, 1, 1, 1]);
  close(u.threshold, 0.15);
  close(u.accuracy, 1);
});

test('verificationReport gathers every headline figure', () => {
  const r = verificationReport(dist, diff, 0.25);
  assert.equal(r.pairs, 6);
  assert.equal(r.same_pairs, 3);
  assert.equal(r.different_pairs, 3);
  close(r.accuracy_median, 4 / 6);
  // Threshold 0.25: predictions S S D D D D for sorted S S D S D D -> 5/6.
  close(r.accuracy_threshold!, 5 / 6);
  close(r.auc, 8 / 9);
  close(r.eer, 1 / 3);
  // 3 different-person pairs cannot measure a FAR of 1e-2 or below: null, with a note saying why.
  assert.equal(r.tar_at_far_1e2, null);
  assert.equal(r.tar_at_far_1e3, null);
  assert.equal(r.tar_at_far_1e4, null);
  assert.deepEqual(r.notes, [
    'tar_at_far_1e2 is null: 3 different-person pairs, fewer than 1/FAR = 100',
    'tar_at_far_1e3 is null: 3 different-person pairs, fewer than 1/FAR = 1000',
    'tar_at_far_1e4 is null: 3 different-person pairs, fewer than 1/FAR = 10000',
  ]);
  assert.equal(verificationReport(dist, diff).threshold, undefined);
});

test('verificationReport: TAR at a FAR is reported from 1/FAR different-person pairs on', () => {
  // 1,000 different-person pairs at distances 1..1000, 10 same-person pairs at 0.5 (5) and 1.5..5.5 (5).
  const d: number[] = [];
  const y: number[] = [];
  for (let i = 1; i <= 1000; i++) {
    d.push(i);
    y.push(1);
  }
  for (let i = 0; i < 5; i++) {
    d.push(0.5, 1.5 + i);
    y.push(0, 0);
  }
  const r = verificationReport(d, y);
  assert.equal(r.different_pairs, 1000);
  // FAR 1e-3 allows one false accept (distance 1): accepting up to 1.5 takes 0.5 x5 and 1.5 -> 6/10. FAR 1e-2
  // allows 10: all 10 same pairs (up to 5.5, with 5 false accepts).
  close(r.tar_at_far_1e3!, 0.6);
  close(r.tar_at_far_1e2!, 1);
  assert.equal(r.tar_at_far_1e4, null);
  assert.deepEqual(r.notes, ['tar_at_far_1e4 is null: 1000 different-person pairs, fewer than 1/FAR = 10000']);
  // 999 negatives: 1e-3 is no longer measurable.
  const fewer = verificationReport(d.slice(1), y.slice(1));
  assert.equal(fewer.tar_at_far_1e3, null);
  close(fewer.tar_at_far_1e2!, 1);
});

test('kFoldAccuracy: the threshold of each fold is chosen on the other folds (LFW protocol), mean and std', () => {
  // Two folds. Fold 0: S 0.1, S 0.2, D 0.8, D 0.9; fold 1: S 0.3, D 0.4, S 0.45, D 0.7.
  const d = [0.1, 0.2, 0.8, 0.9, 0.3, 0.4, 0.45, 0.7];
  const y = [0, 0, 1, 1, 0, 1, 0, 1];
  const folds = [0, 0, 0, 0, 1, 1, 1, 1];
  const r = kFoldAccuracy(d, y, folds);
  assert.equal(r.folds, 2);
  // Fold 0 is tested with the best threshold of fold 1: candidates 0.35 and 0.575 both give 3/4; 0.35 is nearer
  // fold 1's median (0.425). On fold 0: S S D D at 0.1 0.2 0.8 0.9 -> all right.
  close(r.per_fold[0].threshold, 0.35);
  close(r.per_fold[0].accuracy, 1);
  // Fold 1 is tested with fold 0's best threshold (midway 0.2-0.8 = 0.5): 0.3 S ok, 0.4 D wrong, 0.45 S ok, 0.7 D ok.
  close(r.per_fold[1].threshold, 0.5);
  close(r.per_fold[1].accuracy, 0.75);
  close(r.accuracy_mean, 0.875);
  close(r.accuracy_std, Math.sqrt(((1 - 0.875) ** 2 + (0.75 - 0.875) ** 2) / 1));
  close(r.standard_error, r.accuracy_std / Math.sqrt(2));
  assert.throws(
    () =>
      kFoldAccuracy(
        d,
        y,
        d.map(() => 3),
      ),
    /at least 2 folds/,
  );
});

test('assignFolds deals same and different pairs round-robin, so each fold is balanced', () => {
  const y = [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 0];
  const f = assignFolds(y, 3);
  for (let k = 0; k < 3; k++) {
    const inFold = y.filter((_, i) => f[i] === k);
    assert.equal(inFold.length, 4);
    assert.equal(inFold.filter((v) => v === 1).length, 2, `fold ${k} balanced`);
  }
  // Fewer pairs than 2k: different-person pairs continue after the same-person ones, so no fold is left empty.
  assert.deepEqual(assignFolds([0, 0, 0, 1, 1, 1], 4), [0, 1, 2, 3, 0, 1]);
});
