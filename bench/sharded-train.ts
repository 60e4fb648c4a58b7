// The wasm rows of bench:train: the training step as the stages run it, sharded over worker threads
// (src/ml/train/parallel/engine.ts), with 1 or more workers on the same shard count (the same math).
// Runs inside a child process of train.bench.ts, so its peak RSS covers the main thread and every worker.
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/ml/backend/select.js';
import { triarchyLoss } from '../src/ml/losses/triarchy.js';
import { createTriarchyNet } from '../src/ml/model/triarchy.js';
import { Adam } from '../src/ml/train/adam.js';
import { ShardedEngine } from '../src/ml/train/parallel/engine.js';
import type { TrainBatch } from '../src/ml/train/trainer.js';

export interface ShardedResult {
  backend: string;
  workers: number;
  shards: number;
  detail: string;
  batch: number;
  steps: number;
  warmup: number;
  imgPerSec: number;
  bestImgPerSec: number;
  stepMs: number[];
  cpuMsPerStep: number;
  peakRssMb: number;
  /** Mean ms per step in each phase of the engine (what bounds the step). */
  phases: Record<string, number>;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function shardedChild(o: {
  workers: number;
  shards: number;
  batch: number;
  steps: number;
  /** Untimed steps first: wasm heaps and their first-touch page faults, XNNPACK operators, JIT, kernel tuning. */
  warmup: number;
  size: number;
  idsPerBatch: number;
}): Promise<ShardedResult> {
  const info = await initBackend('wasm');
  const perId = Math.max(2, o.batch / o.idsPerBatch);
  const options = {
    backbone: { width: 1, depth: 1, inputSize: o.size, bnMomentum: 0.9, dropConnect: 0.2 },
    embeddingDim: 512,
    numClasses: Math.ceil(o.batch / perId),
    seed: 0,
  };
  const net = createTriarchyNet(options);
  const engine = await ShardedEngine.start({
    spec: { kind: 'triarchy', options },
    shards: o.shards,
    workers: o.workers,
    backend: 'wasm',
  });
  const trainVars = net.trainableVariables();
  const adam = new Adam(trainVars);
  try {
    const batch: TrainBatch = {
      x: tf.randomUniform<tf.Rank.R4>([o.batch, o.size, o.size, 3], 0, 1, 'float32', 1),
      labels: {
        identity: tf.tensor1d(
          Array.from({ length: o.batch }, (_, i) => Math.floor(i / perId)),
          'int32',
        ),
      },
      indices: [],
    };
    await engine.begin({
      trainVars,
      stateVars: net.stateVariables(),
      adam,
      seed: '0',
      loss: (out, b) =>
        triarchyLoss(
          out as { embedding: tf.Tensor; logits: tf.Tensor },
          b.labels.identity,
          net.centers as unknown as tf.Tensor2D,
        ),
    });
    for (let i = 0; i < Math.max(1, o.warmup); i++) await engine.step(batch, 1e-3);
    engine.resetTimings();
    const times: number[] = [];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < o.steps; i++) {
      const t0 = performance.now();
      await engine.step(batch, 1e-3);
      times.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    const phases = Object.fromEntries(Object.entries(engine.timings).map(([k, v]) => [k, Math.round(v / o.steps)]));
    return {
      backend: 'wasm',
      workers: engine.workers,
      shards: o.shards,
      detail: `${info.version}, ${info.detail}, ${o.shards} shards on ${engine.workers} worker thread${engine.workers === 1 ? '' : 's'}`,
      batch: o.batch,
      steps: o.steps,
      warmup: Math.max(1, o.warmup),
      stepMs: times.map((t) => Math.round(t)),
      imgPerSec: o.batch / (median(times) / 1000),
      bestImgPerSec: o.batch / (Math.min(...times) / 1000),
      cpuMsPerStep: Math.round((cpu.user + cpu.system) / 1000 / o.steps),
      // The whole process: main thread and every worker's wasm heap.
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      phases,
    };
  } finally {
    await engine.close();
    adam.dispose();
    net.dispose();
  }
}
