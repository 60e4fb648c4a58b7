// Public API of the ML model layer.
export {
  createTriarchyNet,
  createEmbeddingNet,
  TriarchyNet,
  EmbeddingNet,
  type TriarchyOptions,
  ID_BN_EPSILON,
  ID_BN_MOMENTUM,
} from './triarchy.js';
export { createPretextNet, PretextNet, type PretextOptions } from './pretext.js';
export {
  EfficientNetBackbone,
  blockSpecs,
  roundFilters,
  roundRepeats,
  B0_STAGES,
  type BlockSpec,
} from './efficientnet.js';
export {
  countParams,
  saveNet,
  loadNet,
  loadNetWeightsInto,
  saveInferenceModel,
  loadInferenceModel,
  saveBackbone,
  loadBackboneInto,
  modelDirHandler,
  type InferenceModel,
  type NetTopology,
  type NetKind,
} from './io.js';
export { buildLayersModel } from './layers-export.js';
