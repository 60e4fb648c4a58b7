// Default cluster resources of the TensorFlow.js training kinds.
import type { StageResources } from '../../contracts/resources.js';

/**
 * Backends that run on a GPU when the node has one: native TensorFlow (tfjs-node-gpu; with the CPU-only
 * tfjs-node it is no GPU, which `resources: { gpus: 0 }` says) and WebGPU. 'auto' asks for none: it may pick
 * any backend, so name one to get a GPU.
 */
const GPU_BACKENDS = new Set(['tensorflow', 'webgpu']);

/** A training stage asks for one GPU when a GPU backend is chosen, else for none. */
export function trainingResources(backend: string): StageResources {
  return { gpus: GPU_BACKENDS.has(backend) ? 1 : 0 };
}
