import { initBackend } from '../../ml/backend/select.js';
import { countParams, loadInferenceModel, loadNet, saveInferenceModel, TriarchyNet } from '../../ml/model/index.js';
import type { BackendPreference } from '../../ml/types.js';
import type { StageRun } from '../../contracts/stage-kind.js';
import type { PruneParams } from './kind.js';

export const run: StageRun<PruneParams> = async (ctx) => {
  const backend = await initBackend(ctx.backend as BackendPreference);
  ctx.metrics({ backend: backend.name });
  const net = await loadNet(ctx.inputs.model);
  try {
    if (!(net instanceof TriarchyNet)) {
      throw new Error(
        `${ctx.inputs.model}: prune expects a triarchy model (wire it to triarchy.model), got a pretext model`,
      );
    }
    const trainingParams = countParams(net);
    await saveInferenceModel(net, ctx.outputs.model);
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

export default run;
