import { join } from 'node:path';
import { backendMetrics, initBackend } from '../../ml/backend/select.js';
import { ONNX_FILE, writeOnnxModel } from '../../ml/export/onnx/index.js';
import { checkOnnxAgainstTfjs } from '../../ml/export/onnx/verify.js';
import { countParams, loadInferenceModel, loadNet, saveInferenceModel, TriarchyNet } from '../../ml/model/index.js';
import type { BackendPreference } from '../../ml/types.js';
import type { StageRun } from '../../contracts/stage-kind.js';
import type { PruneParams } from './kind.js';

export const run: StageRun<PruneParams> = async (ctx) => {
  const backend = await initBackend(ctx.backend as BackendPreference);
  ctx.metrics(backendMetrics(backend));
  const net = await loadNet(ctx.inputs.model);
  try {
    if (!(net instanceof TriarchyNet)) {
      throw new Error(
        `${ctx.inputs.model}: prune expects a triarchy model (wire it to triarchy.model), got a pretext model`,
      );
    }
    const trainingParams = countParams(net);
    await saveInferenceModel(net, ctx.outputs.model);
    await writeOnnxModel(net, join(ctx.outputs.model, ONNX_FILE));
    await checkOnnx(ctx, net);
    // Count what was written, by loading it back as evaluate will.
    const inference = await loadInferenceModel(ctx.outputs.model);
    const params = inference.numParams;
    inference.dispose();
    ctx.log(
      `inference model: ${params.toLocaleString('en-US')} parameters (removed ${(trainingParams - params).toLocaleString('en-US')}: identity head, its BatchNorm, the class centres)`,
    );
    ctx.metrics({ params, removed_params: trainingParams - params });
    const cap = ctx.params.max_params;
    if (cap !== null && params > cap) {
      throw new Error(
        `the inference model has ${params.toLocaleString('en-US')} parameters, over prune.max_params = ${cap.toLocaleString('en-US')}; ` +
          'use a smaller backbone (triarchy.backbone.width / depth) or embedding_dim, or raise max_params',
      );
    }
  } finally {
    net.dispose();
  }
};

/** model.onnx must compute what the TF.js model does (float rounding only). */
async function checkOnnx(ctx: Parameters<StageRun<PruneParams>>[0], net: TriarchyNet): Promise<void> {
  const check = await checkOnnxAgainstTfjs(net, join(ctx.outputs.model, ONNX_FILE));
  if (!check) {
    ctx.log(`${ONNX_FILE} written, not checked: onnxruntime-node is not installed`);
    return;
  }
  const relative = check.maxAbsDiff / Math.max(1, check.maxAbs);
  ctx.log(
    `${ONNX_FILE}: onnxruntime matches TF.js to ${check.maxAbsDiff.toExponential(1)} (max |embedding| ${check.maxAbs.toFixed(2)})`,
  );
  ctx.metrics({ onnx_max_abs_diff: Number(check.maxAbsDiff.toExponential(2)) });
  if (!(relative < 1e-3))
    throw new Error(
      `${ONNX_FILE} disagrees with the TF.js model (max |difference| ${check.maxAbsDiff}, embeddings up to ${check.maxAbs}): a bug in facepipe's ONNX writer, please report it`,
    );
}

export default run;
