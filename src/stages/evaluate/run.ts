import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatCsv } from '../../core/csv.js';
import { ImageCache } from '../../ml/data/cache.js';
import { pairSetDistances } from '../../ml/eval/embed.js';
import { openEvalModel } from '../../ml/eval/inference-model.js';
import {
  assignFolds,
  bestThreshold,
  eerThreshold,
  kFoldAccuracy,
  median,
  predict,
  rocCurve,
  verificationReport,
  type KFoldReport,
  type VerificationReport,
} from '../../ml/eval/metrics.js';
import { writeRocPng } from '../../ml/eval/roc-image.js';
import { WorkerPool } from '../../ml/train/parallel/pool.js';
import type { BackendName } from '../../ml/types.js';
import type { StageContext, StageRun } from '../../contracts/stage-kind.js';
import { LABEL_CONVENTION, readSplits, type Pair } from '../shared/splits-format.js';
import type { EvaluateParams } from './kind.js';

const LFW_FOLDS = 10;

export const run: StageRun<EvaluateParams> = async (ctx) => {
  const p = ctx.params;
  const root = ctx.inputs.dataset;
  const splits = await readSplits(ctx.inputs.splits);
  // Checked before embedding anything: a protocol the test pairs cannot follow fails at once.
  const folds = p.protocol === 'lfw10' ? lfwFolds(splits.test) : undefined;
  // onnxruntime gets the stage's cores too: sweep points evaluating side by side do not oversubscribe them.
  const model = await openEvalModel(
    ctx.inputs.model,
    p.runtime,
    ctx.backend,
    (l) => ctx.log(l),
    'evaluate.runtime',
    ctx.cores,
  );
  ctx.metrics({
    runtime: model.runtime,
    ...(model.backend ? { backend: model.backend } : {}),
    ...(model.adapter ? { adapter: model.adapter } : {}),
  });
  ctx.log(`embedding with ${model.detail}`);
  // TF.js on wasm or cpu embeds on worker threads, one per core the stage may use (onnxruntime, the native and
  // webgpu backends use the cores or a GPU by themselves); the figures are the same for any number of them.
  let pool: WorkerPool | undefined;
  try {
    if (model.runtime === 'tfjs' && (model.backend === 'wasm' || model.backend === 'cpu') && ctx.cores > 1) {
      pool = await WorkerPool.start(
        { kind: 'inference', dir: ctx.inputs.model },
        ctx.cores,
        model.backend as BackendName,
      );
      ctx.log(`TF.js embeds on ${pool.size} worker threads`);
    }
    const embedder = pool ?? model.embedder;
    const opts = {
      inputSize: model.inputSize,
      batchSize: p.batch_size,
      flipAverage: p.flip_average,
      cache: new ImageCache(),
      signal: ctx.signal,
    };
    ctx.progress(`embedding ${splits.validation.length} validation pairs`);
    const valDist = await pairSetDistances(embedder, root, splits.validation, opts);
    ctx.progress(`embedding ${splits.test.length} test pairs`);
    const testDist = await pairSetDistances(embedder, root, splits.test, opts);
    const valLabels = splits.validation.map((x) => x.different);
    const testLabels = splits.test.map((x) => x.different);

    // The threshold is chosen on validation and applied unchanged to test; the median rule is the original's.
    const chosen = p.threshold_rule === 'eer' ? eerThreshold(valDist, valLabels) : bestThreshold(valDist, valLabels);
    const test: VerificationReport & { lfw10?: KFoldReport & { fold_source: string } } = verificationReport(
      testDist,
      testLabels,
      chosen.threshold,
    );
    if (folds) test.lfw10 = { ...kFoldAccuracy(testDist, testLabels, folds.folds), fold_source: folds.source };
    const validation = verificationReport(valDist, valLabels, chosen.threshold);
    const out = ctx.outputs.report;
    await writeFile(
      join(out, 'metrics.json'),
      JSON.stringify(
        {
          label_convention: LABEL_CONVENTION,
          rule: 'distance > threshold predicts different person (1); distance = euclidean between embeddings',
          params: model.numParams,
          embedding_dim: model.embeddingDim,
          input_size: model.inputSize,
          flip_average: p.flip_average,
          runtime: model.runtime,
          threshold: {
            value: chosen.threshold,
            source:
              p.threshold_rule === 'eer' ? 'validation (equal error rate point)' : 'validation (maximum accuracy)',
          },
          predictions_rule: p.predictions_rule,
          protocol: p.protocol,
          test,
          validation,
        },
        null,
        2,
      ) + '\n',
    );

    const threshold = p.predictions_rule === 'median' ? median(testDist) : chosen.threshold;
    await writeFile(join(out, 'predictions.csv'), predictionsCsv(splits.test, testDist, threshold));
    await writeRoc(out, testDist, testLabels, valDist, valLabels, test, validation);
    report(ctx, test, validation, model.numParams);
  } finally {
    await pool?.close();
    await model.dispose();
  }
};

/** The test pairs in the original format (image1,image2,label; 1 = different), with each pair's distance. */
function predictionsCsv(pairs: Pair[], distances: Float64Array, threshold: number): string {
  const pred = predict(distances, threshold);
  return formatCsv([
    ['image1', 'image2', 'label', 'distance'],
    ...pairs.map((x, i) => [x.image1, x.image2, String(pred[i]), String(distances[i])]),
  ]);
}

/** The folds of the lfw10 protocol: the pairs' own (from an LFW pairs.txt), else 10 balanced ones. */
function lfwFolds(pairs: Pair[]): { folds: number[]; source: string } {
  const given = pairs.filter((x) => x.fold !== undefined).length;
  if (given === 0)
    return {
      folds: assignFolds(
        pairs.map((x) => x.different),
        LFW_FOLDS,
      ).map((f) => f + 1),
      source: `assigned: the test pairs carry no folds, so same- and different-person pairs were dealt in turn into ${LFW_FOLDS} folds`,
    };
  const distinct = new Set(pairs.map((x) => x.fold)).size;
  if (given !== pairs.length || distinct !== LFW_FOLDS)
    throw new Error(
      `evaluate.protocol lfw10 needs ${LFW_FOLDS} folds; the test pairs have ${given < pairs.length ? `folds on ${given} of ${pairs.length} pairs` : `${distinct} folds`} (their fold column); use a pairs file with 10 folds, or set evaluate.protocol: null`,
    );
  return { folds: pairs.map((x) => x.fold!), source: 'the pairs file (fold column of test.csv)' };
}

async function writeRoc(
  out: string,
  testDist: Float64Array,
  testLabels: boolean[],
  valDist: Float64Array,
  valLabels: boolean[],
  test: VerificationReport,
  validation: VerificationReport,
): Promise<void> {
  const testRoc = rocCurve(testDist, testLabels);
  const valRoc = rocCurve(valDist, valLabels);
  await writeRocPng(join(out, 'roc.png'), testRoc, {
    title: `ROC: test AUC ${test.auc.toFixed(3)}, EER ${test.eer.toFixed(3)}`,
    label: `test (${test.pairs} pairs)`,
    extra: [{ roc: valRoc, label: `validation (${validation.pairs} pairs)` }],
  });
  // The curves' points, for `facepipe report` to overlay experiments (the -Infinity threshold becomes null).
  await writeFile(join(out, 'roc.json'), JSON.stringify({ test: testRoc, validation: valRoc }) + '\n');
}

/** The log line and the run record's figures (a figure that is null is left out, its note logged). */
function report(
  ctx: StageContext<EvaluateParams>,
  test: VerificationReport & { lfw10?: KFoldReport },
  validation: VerificationReport,
  params: number,
): void {
  const r4 = (x: number) => Number(x.toFixed(4));
  const lfw = test.lfw10
    ? `, LFW 10-fold accuracy ${r4(test.lfw10.accuracy_mean)} ± ${r4(test.lfw10.accuracy_std)}`
    : '';
  ctx.log(
    `test: accuracy ${r4(test.accuracy_threshold!)} (validation threshold), ${r4(test.accuracy_median)} (median rule)${lfw}, AUC ${r4(test.auc)}, EER ${r4(test.eer)}`,
  );
  for (const note of test.notes ?? []) ctx.log(`test: ${note}`);
  const tars: Record<string, number> = {};
  for (const key of ['tar_at_far_1e2', 'tar_at_far_1e3', 'tar_at_far_1e4'] as const) {
    const v = test[key];
    if (v !== null) tars[key] = r4(v);
  }
  ctx.metrics({
    accuracy: r4(test.accuracy_threshold!),
    accuracy_median: r4(test.accuracy_median),
    ...(test.lfw10 ? { lfw10_accuracy: r4(test.lfw10.accuracy_mean), lfw10_std: r4(test.lfw10.accuracy_std) } : {}),
    auc: r4(test.auc),
    eer: r4(test.eer),
    ...tars,
    val_accuracy: r4(validation.accuracy_threshold!),
    params,
  });
}

export default run;
