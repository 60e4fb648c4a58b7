import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageCache } from '../../ml/data/cache.js';
import { pairSetDistances } from '../../ml/eval/embed.js';
import { bestThreshold, eerThreshold, median, predict, rocCurve, verificationReport } from '../../ml/eval/metrics.js';
import { writeRocPng } from '../../ml/eval/roc-image.js';
import type { StageRun } from '../../contracts/stage-kind.js';
import { LABEL_CONVENTION, pairsCsv, readSplits } from '../shared/splits-format.js';
import { openEvalModel } from './embedder.js';
import type { EvaluateParams } from './kind.js';

export const run: StageRun<EvaluateParams> = async (ctx) => {
  const p = ctx.params;
  const root = ctx.inputs.dataset;
  const splits = await readSplits(ctx.inputs.splits);
  const model = await openEvalModel(ctx.inputs.model, p.runtime, ctx.backend, (l) => ctx.log(l));
  ctx.metrics({
    runtime: model.runtime,
    ...(model.backend ? { backend: model.backend } : {}),
    ...(model.adapter ? { adapter: model.adapter } : {}),
  });
  ctx.log(`embedding with ${model.detail}`);
  try {
    const opts = {
      inputSize: model.inputSize,
      batchSize: p.batch_size,
      flipAverage: p.flip_average,
      cache: new ImageCache(),
      signal: ctx.signal,
    };
    ctx.progress(`embedding ${splits.validation.length} validation pairs`);
    const valDist = await pairSetDistances(model.embedder, root, splits.validation, opts);
    ctx.progress(`embedding ${splits.test.length} test pairs`);
    const testDist = await pairSetDistances(model.embedder, root, splits.test, opts);
    const valLabels = splits.validation.map((x) => x.different);
    const testLabels = splits.test.map((x) => x.different);

    // The threshold is chosen on validation and applied unchanged to test; the median rule is the original's.
    const chosen = p.threshold_rule === 'eer' ? eerThreshold(valDist, valLabels) : bestThreshold(valDist, valLabels);
    const test = verificationReport(testDist, testLabels, chosen.threshold);
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
          test,
          validation,
        },
        null,
        2,
      ) + '\n',
    );

    const threshold = p.predictions_rule === 'median' ? median(testDist) : chosen.threshold;
    const pred = predict(testDist, threshold);
    await writeFile(
      join(out, 'predictions.csv'),
      pairsCsv(splits.test.map((x, i) => ({ image1: x.image1, image2: x.image2, different: pred[i] === 1 }))),
    );

    const testRoc = rocCurve(testDist, testLabels);
    const valRoc = rocCurve(valDist, valLabels);
    await writeRocPng(join(out, 'roc.png'), testRoc, {
      title: `ROC: test AUC ${test.auc.toFixed(3)}, EER ${test.eer.toFixed(3)}`,
      label: `test (${test.pairs} pairs)`,
      extra: [{ roc: valRoc, label: `validation (${validation.pairs} pairs)` }],
    });
    // The curves' points, for `facepipe report` to overlay experiments (the -Infinity threshold becomes null).
    await writeFile(join(out, 'roc.json'), JSON.stringify({ test: testRoc, validation: valRoc }) + '\n');

    const r4 = (x: number) => Number(x.toFixed(4));
    ctx.log(
      `test: accuracy ${r4(test.accuracy_threshold!)} (validation threshold), ${r4(test.accuracy_median)} (median rule), AUC ${r4(test.auc)}, EER ${r4(test.eer)}`,
    );
    ctx.metrics({
      accuracy: r4(test.accuracy_threshold!),
      accuracy_median: r4(test.accuracy_median),
      auc: r4(test.auc),
      eer: r4(test.eer),
      tar_at_far_1e2: r4(test.tar_at_far_1e2),
      tar_at_far_1e3: r4(test.tar_at_far_1e3),
      val_accuracy: r4(validation.accuracy_threshold!),
      params: model.numParams,
    });
  } finally {
    await model.dispose();
  }
};

export default run;
