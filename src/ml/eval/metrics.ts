// Face-verification metrics over pair distances. Pure TypeScript (no tfjs) so they are cheap to
// unit-test against hand-computed values.
//
// Conventions (the original's): a pair's score is the euclidean distance between its two embeddings;
// label true / 1 means DIFFERENT person; the prediction is `distance > threshold` (1 = different).
// For the ROC, "positive" = same person, accepted when distance <= threshold:
//   TAR (true accept rate)  = accepted same-person pairs / same-person pairs
//   FAR (false accept rate) = accepted different-person pairs / different-person pairs

/** Euclidean distance between row i of `a` and row i of `b` (both flattened [n, dim]). */
export function pairDistances(a: Float32Array | number[], b: Float32Array | number[], dim: number): Float64Array {
  if (a.length !== b.length || a.length % dim !== 0) {
    throw new Error(`pairDistances: embeddings of lengths ${a.length} and ${b.length} do not form [n, ${dim}] pairs`);
  }
  const n = a.length / dim;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let d = 0; d < dim; d++) {
      const diff = a[i * dim + d] - b[i * dim + d];
      s += diff * diff;
    }
    out[i] = Math.sqrt(s);
  }
  return out;
}

/** Median as numpy computes it (mean of the two middle values for an even count). */
export function median(values: ArrayLike<number>): number {
  if (values.length === 0) throw new Error('median of an empty set');
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Predictions (1 = different) for a threshold: different when distance > threshold. */
export function predict(distances: ArrayLike<number>, threshold: number): Uint8Array {
  const out = new Uint8Array(distances.length);
  for (let i = 0; i < distances.length; i++) out[i] = distances[i] > threshold ? 1 : 0;
  return out;
}

function checkLabels(distances: ArrayLike<number>, different: ArrayLike<number | boolean>): void {
  if (distances.length !== different.length) {
    throw new Error(`${distances.length} distances but ${different.length} labels`);
  }
  if (distances.length === 0) throw new Error('no pairs to evaluate');
}

/** Fraction of pairs where `distance > threshold` agrees with the label (1/true = different). */
export function accuracyAt(
  distances: ArrayLike<number>,
  different: ArrayLike<number | boolean>,
  threshold: number,
): number {
  checkLabels(distances, different);
  let correct = 0;
  for (let i = 0; i < distances.length; i++) {
    if (distances[i] > threshold === Boolean(different[i])) correct++;
  }
  return correct / distances.length;
}

/** The original's rule: threshold = median distance of the evaluated set itself (transductive). */
export function medianRule(
  distances: ArrayLike<number>,
  different: ArrayLike<number | boolean>,
): { threshold: number; accuracy: number } {
  const threshold = median(distances);
  return { threshold, accuracy: accuracyAt(distances, different, threshold) };
}

/**
 * Threshold maximising accuracy on a labelled set (e.g. validation), to be applied unchanged to test.
 * Candidates are midpoints between consecutive distinct sorted distances (plus below-min and above-max);
 * ties in accuracy go to the candidate closest to the median, so the choice is stable and centred.
 */
export function bestThreshold(
  distances: ArrayLike<number>,
  different: ArrayLike<number | boolean>,
): { threshold: number; accuracy: number } {
  checkLabels(distances, different);
  const n = distances.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => distances[i] - distances[j]);
  let differentTotal = 0;
  for (let i = 0; i < n; i++) if (different[i]) differentTotal++;
  // Threshold below everything: all predicted different.
  let correct = differentTotal;
  const med = median(distances);
  let best = { threshold: distances[order[0]] - 1e-9, correct };
  const better = (t: number, c: number) =>
    c > best.correct || (c === best.correct && Math.abs(t - med) < Math.abs(best.threshold - med));
  for (let k = 0; k < n;) {
    // Move every pair with this distance to the "same" side at once.
    const d = distances[order[k]];
    while (k < n && distances[order[k]] === d) {
      correct += different[order[k]] ? -1 : 1;
      k++;
    }
    const t = k < n ? (d + distances[order[k]]) / 2 : d + 1e-9;
    if (better(t, correct)) best = { threshold: t, correct };
  }
  return { threshold: best.threshold, accuracy: best.correct / n };
}

export interface RocCurve {
  /** False accept rate at each operating point, ascending from 0 to 1. */
  far: number[];
  /** True accept rate at each operating point. */
  tar: number[];
  /** Distance threshold of each point (accept when distance <= threshold); -Infinity for the (0, 0) point. */
  thresholds: number[];
}

/** ROC over distance thresholds; pairs with equal distances enter together (no optimistic tie-breaking). */
export function rocCurve(distances: ArrayLike<number>, different: ArrayLike<number | boolean>): RocCurve {
  checkLabels(distances, different);
  const n = distances.length;
  let positives = 0;
  for (let i = 0; i < n; i++) if (!different[i]) positives++;
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) {
    throw new Error(
      `ROC needs both same-person and different-person pairs (got ${positives} same, ${negatives} different)`,
    );
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => distances[i] - distances[j]);
  const far = [0];
  const tar = [0];
  const thresholds = [-Infinity];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < n;) {
    const d = distances[order[k]];
    while (k < n && distances[order[k]] === d) {
      if (different[order[k]]) fp++;
      else tp++;
      k++;
    }
    far.push(fp / negatives);
    tar.push(tp / positives);
    thresholds.push(d);
  }
  return { far, tar, thresholds };
}

/** Area under the ROC by the trapezoid rule (equals the Mann-Whitney probability, ties counted half). */
export function rocAuc(roc: RocCurve): number {
  let area = 0;
  for (let i = 1; i < roc.far.length; i++) {
    area += ((roc.far[i] - roc.far[i - 1]) * (roc.tar[i] + roc.tar[i - 1])) / 2;
  }
  return area;
}

/**
 * Equal error rate: where FAR equals FRR (= 1 - TAR), linearly interpolated between the two ROC points
 * that bracket the crossing.
 */
export function equalErrorRate(roc: RocCurve): number {
  for (let i = 1; i < roc.far.length; i++) {
    const g0 = roc.far[i - 1] - (1 - roc.tar[i - 1]);
    const g1 = roc.far[i] - (1 - roc.tar[i]);
    if (g0 <= 0 && g1 >= 0) {
      const t = g1 === g0 ? 0 : -g0 / (g1 - g0);
      return roc.far[i - 1] + t * (roc.far[i] - roc.far[i - 1]);
    }
  }
  // Unreachable: g goes from -1 at (0,0) to +1 at (1,1).
  throw new Error('ROC curve does not cross FAR = FRR');
}

/**
 * Threshold at the equal-error operating point of a labelled set (the ROC point where |FAR - FRR| is
 * smallest; the first on ties), placed midway to the next distinct distance. On a small validation set it
 * transfers to test better than the accuracy-maximising threshold, which overfits a few identities.
 */
export function eerThreshold(
  distances: ArrayLike<number>,
  different: ArrayLike<number | boolean>,
): { threshold: number; accuracy: number } {
  const roc = rocCurve(distances, different);
  let best = 1;
  let gap = Infinity;
  for (let i = 1; i < roc.far.length; i++) {
    const g = Math.abs(roc.far[i] - (1 - roc.tar[i]));
    if (g < gap) {
      gap = g;
      best = i;
    }
  }
  const threshold =
    best + 1 < roc.thresholds.length
      ? (roc.thresholds[best] + roc.thresholds[best + 1]) / 2
      : roc.thresholds[best] + 1e-9;
  return { threshold, accuracy: accuracyAt(distances, different, threshold) };
}

/** Highest TAR among operating points whose FAR does not exceed `maxFar` (no interpolation: achievable points only). */
export function tarAtFar(roc: RocCurve, maxFar: number): number {
  let best = 0;
  for (let i = 0; i < roc.far.length; i++) {
    if (roc.far[i] <= maxFar && roc.tar[i] > best) best = roc.tar[i];
  }
  return best;
}

/** The FARs at which TAR is reported (tar_at_far_1e2, _1e3, _1e4). */
export const REPORTED_FARS = [1e-2, 1e-3, 1e-4] as const;

/**
 * TAR at a FAR, or null when the set has fewer than 1/FAR different-person pairs: below that the only FAR the
 * set can measure under the target is 0, and the figure would only look meaningful.
 */
export function tarAtFarIfMeasurable(
  roc: RocCurve,
  maxFar: number,
  negatives: number,
): { tar: number | null; note?: string } {
  const needed = Math.round(1 / maxFar);
  if (negatives >= needed) return { tar: tarAtFar(roc, maxFar) };
  return {
    tar: null,
    note: `${farKey(maxFar)} is null: ${negatives} different-person pairs, fewer than 1/FAR = ${needed}`,
  };
}

/** 'tar_at_far_1e3' for 1e-3. */
export const farKey = (far: number) => `tar_at_far_1e${Math.round(-Math.log10(far))}`;

export interface VerificationReport {
  pairs: number;
  same_pairs: number;
  different_pairs: number;
  median_threshold: number;
  accuracy_median: number;
  /** Present when a threshold was supplied (chosen on validation). */
  threshold?: number;
  accuracy_threshold?: number;
  auc: number;
  eer: number;
  /** null when the set has fewer than 100 / 1,000 / 10,000 different-person pairs (see notes). */
  tar_at_far_1e2: number | null;
  tar_at_far_1e3: number | null;
  tar_at_far_1e4: number | null;
  /** Why a figure is null. */
  notes?: string[];
}

/** All headline metrics of one labelled pair set. `threshold` (from validation) is optional. */
export function verificationReport(
  distances: ArrayLike<number>,
  different: ArrayLike<number | boolean>,
  threshold?: number,
): VerificationReport {
  const roc = rocCurve(distances, different);
  const med = medianRule(distances, different);
  let differentPairs = 0;
  for (let i = 0; i < different.length; i++) if (different[i]) differentPairs++;
  const tars = REPORTED_FARS.map((far) => tarAtFarIfMeasurable(roc, far, differentPairs));
  const notes = tars.flatMap((t) => (t.note ? [t.note] : []));
  const report: VerificationReport = {
    pairs: distances.length,
    same_pairs: distances.length - differentPairs,
    different_pairs: differentPairs,
    median_threshold: med.threshold,
    accuracy_median: med.accuracy,
    auc: rocAuc(roc),
    eer: equalErrorRate(roc),
    tar_at_far_1e2: tars[0].tar,
    tar_at_far_1e3: tars[1].tar,
    tar_at_far_1e4: tars[2].tar,
  };
  if (threshold !== undefined) {
    report.threshold = threshold;
    report.accuracy_threshold = accuracyAt(distances, different, threshold);
  }
  if (notes.length) report.notes = notes;
  return report;
}

/**
 * Fold of each pair for a k-fold protocol when the pairs carry none (0-based): same-person pairs are dealt
 * round-robin in their order, then different-person pairs, continuing from the fold after the last same-person one.
 * Each fold gets as many of each as it can (within one), and every fold gets a pair when there are k or more.
 */
export function assignFolds(different: ArrayLike<number | boolean>, k: number): number[] {
  let same = 0;
  for (let i = 0; i < different.length; i++) if (!different[i]) same++;
  const next = { same: 0, diff: same % k };
  return Array.from({ length: different.length }, (_, i) => (different[i] ? next.diff++ : next.same++) % k);
}

export interface KFoldReport {
  folds: number;
  /** Per fold: its pairs, the threshold chosen on the other folds, and the accuracy it gives on this fold. */
  per_fold: Array<{ fold: number; pairs: number; threshold: number; accuracy: number }>;
  accuracy_mean: number;
  /** Sample standard deviation of the fold accuracies (n - 1), as LFW's protocol defines it. */
  accuracy_std: number;
  /** accuracy_std / sqrt(folds): LFW's "standard error of the mean". */
  standard_error: number;
}

/**
 * k-fold verification accuracy (LFW's published protocol): for each fold, the threshold that maximises accuracy on
 * the other k - 1 folds is applied to it. `folds[i]` is pair i's fold (any distinct values, e.g. 1..10).
 */
export function kFoldAccuracy(
  distances: ArrayLike<number>,
  different: ArrayLike<number | boolean>,
  folds: ArrayLike<number>,
): KFoldReport {
  checkLabels(distances, different);
  if (folds.length !== distances.length) throw new Error(`${distances.length} distances but ${folds.length} folds`);
  const names = [...new Set(Array.from(folds))].sort((a, b) => a - b);
  if (names.length < 2) throw new Error(`a k-fold protocol needs at least 2 folds, got ${names.length}`);
  const per_fold = names.map((fold) => {
    const train = { d: [] as number[], y: [] as boolean[] };
    const held = { d: [] as number[], y: [] as boolean[] };
    for (let i = 0; i < distances.length; i++) {
      const into = folds[i] === fold ? held : train;
      into.d.push(distances[i]);
      into.y.push(Boolean(different[i]));
    }
    const { threshold } = bestThreshold(train.d, train.y);
    return { fold, pairs: held.d.length, threshold, accuracy: accuracyAt(held.d, held.y, threshold) };
  });
  const acc = per_fold.map((f) => f.accuracy);
  const mean = acc.reduce((a, b) => a + b, 0) / acc.length;
  const std = Math.sqrt(acc.reduce((a, x) => a + (x - mean) ** 2, 0) / (acc.length - 1));
  return {
    folds: names.length,
    per_fold,
    accuracy_mean: mean,
    accuracy_std: std,
    standard_error: std / Math.sqrt(names.length),
  };
}
