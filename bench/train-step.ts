// One facepipe training step (Triarchy net + loss, facepipe's Adam and trainStep) on the current backend, timed,
// and on webgpu with its kernel dispatches counted. Shared by bench:train's webgpu row and bench:gpu.
import * as tf from '@tensorflow/tfjs-core';
import { createTriarchyNet } from '../src/ml/model/index.js';
import { triarchyLoss } from '../src/ml/losses/triarchy.js';
import { Adam } from '../src/ml/train/adam.js';
import { trainStep } from '../src/ml/train/trainer.js';

export interface StepSetup {
  size: number;
  batch: number;
  width?: number;
  depth?: number;
  /** Images per identity in the batch (P x K sampling). */
  perId?: number;
  microBatch?: number;
  dropConnect?: number;
}

export interface StepFigures {
  /** Losses of the timed steps, in order (the first after one warm-up step). */
  losses: number[];
  stepMs: number[];
  /** Kernel dispatches of one step (webgpu only). */
  dispatches?: number;
  /** Dispatches per tfjs kernel name in that step, largest first (webgpu only). */
  byKernel?: Array<[string, number]>;
}

/**
 * Builds the net, runs `warmup` untimed steps, then `steps` timed ones; `count` gives a dispatch counter reader
 * (webgpu's countDispatches) to count the first timed step. Every read is asynchronous.
 */
export async function runTrainSteps(
  s: StepSetup,
  steps: number,
  opts: { warmup?: number; count?: () => Promise<() => number>; byKernel?: boolean; seed?: number } = {},
): Promise<StepFigures> {
  const perId = s.perId ?? Math.max(2, Math.floor(s.batch / 8));
  const numClasses = Math.max(2, Math.ceil(s.batch / perId));
  const net = createTriarchyNet({
    backbone: {
      width: s.width ?? 1,
      depth: s.depth ?? 1,
      inputSize: s.size,
      bnMomentum: 0.9,
      dropConnect: s.dropConnect ?? 0,
    },
    embeddingDim: 512,
    numClasses,
    seed: opts.seed ?? 0,
  });
  const x = tf.randomUniform<tf.Rank.R4>([s.batch, s.size, s.size, 3], 0, 1, 'float32', 1);
  const labels = tf.tensor1d(
    Array.from({ length: s.batch }, (_, i) => Math.floor(i / perId) % numClasses),
    'int32',
  );
  const vars = net.trainableVariables();
  const adam = new Adam(vars);
  const batch = { x, labels: { identity: labels }, indices: [] };
  const loss = (out: Record<string, tf.Tensor>) =>
    triarchyLoss(out as { embedding: tf.Tensor; logits: tf.Tensor }, labels, net.centers as unknown as tf.Tensor2D);
  const step = () => trainStep(net, vars, net.stateVariables(), batch, loss, adam, 1e-3, s.microBatch);
  const fig: StepFigures = { losses: [], stepMs: [] };
  try {
    for (let i = 0; i < (opts.warmup ?? 1); i++) await step();
    for (let i = 0; i < steps; i++) {
      const counter = i === 0 && opts.count ? await opts.count() : undefined;
      const kernels = i === 0 && opts.byKernel && counter ? countByKernel(counter) : undefined;
      const t0 = performance.now();
      const r = await step();
      fig.stepMs.push(performance.now() - t0);
      fig.losses.push(r.loss);
      if (counter) fig.dispatches = counter();
      if (kernels) fig.byKernel = kernels.stop();
    }
  } finally {
    adam.dispose();
    net.dispose();
    x.dispose();
    labels.dispose();
  }
  return fig;
}

/** Attributes dispatches to the tfjs kernel that issued them (wraps every kernel of the current backend). */
function countByKernel(counter: () => number): { stop(): Array<[string, number]> } {
  const backend = tf.getBackend();
  const totals = new Map<string, number>();
  const configs = tf.getKernelsForBackend(backend);
  let depth = 0;
  for (const k of configs) {
    tf.unregisterKernel(k.kernelName, backend);
    tf.registerKernel({
      ...k,
      kernelFunc: (args: Parameters<typeof k.kernelFunc>[0]) => {
        const before = counter();
        depth++;
        try {
          return k.kernelFunc(args);
        } finally {
          depth--;
          // Nested kernels (a kernel calling others) count once, at the outermost.
          if (depth === 0) totals.set(k.kernelName, (totals.get(k.kernelName) ?? 0) + counter() - before);
        }
      },
    });
  }
  return {
    stop() {
      for (const k of configs) {
        tf.unregisterKernel(k.kernelName, backend);
        tf.registerKernel(k);
      }
      return [...totals].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    },
  };
}
