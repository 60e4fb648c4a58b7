// How a training kind runs its steps: sharded over worker threads (wasm, cpu), or in this process (micro_batch,
// or the native and webgpu backends, which use the machine's cores or a GPU by themselves).
import * as tf from '@tensorflow/tfjs-core';
import type { StageContext } from '../../contracts/stage-kind.js';
import { ShardedEngine, type ShardedEngineOptions } from '../../ml/train/parallel/engine.js';
import { shardOrder } from '../../ml/train/parallel/update.js';
import type { BatchProvider, TrainBatch } from '../../ml/train/trainer.js';
import type { BackendName } from '../../ml/types.js';

/**
 * Epoch checkpoints at most this often (and always at the end of a training call, i.e. before each validation): a
 * kill loses at most this much training, and short epochs (the default config's are 2 steps) are not spent hashing
 * and writing a checkpoint each.
 */
export const CHECKPOINT_SECONDS = 10;

export interface TrainingEngine {
  /** Present when the steps run on worker threads; close() it when the stage ends. */
  engine?: ShardedEngine;
  /** Micro-batch size for an in-process run. */
  microBatch?: number;
  /** The batches to train on (reordered so that in-process micro-batches are the shards). */
  arrange(batches: BatchProvider): BatchProvider;
}

export async function trainingEngine(o: {
  ctx: Pick<StageContext, 'cores' | 'log'>;
  backend: BackendName;
  spec: ShardedEngineOptions['spec'];
  shards: number;
  microBatch: number | null;
  batchSize: number;
}): Promise<TrainingEngine> {
  const asIs = (b: BatchProvider) => b;
  if (o.microBatch) {
    o.ctx.log(`micro_batch ${o.microBatch}: training runs in this process on one core (shards has no effect)`);
    return { microBatch: o.microBatch, arrange: asIs };
  }
  if (o.backend === 'tensorflow' || o.backend === 'webgpu') {
    // The same shards (rows s, s + shards, ...: each holds every identity of a P x K batch), as the contiguous
    // micro-batches of an in-process step: per-shard BatchNorm, the loss on the whole batch.
    const chunk = Math.ceil(o.batchSize / o.shards);
    if (chunk >= o.batchSize) return { arrange: asIs };
    o.ctx.log(`${o.backend}: the ${o.shards} shards run one after another in this process`);
    return { microBatch: chunk, arrange: (b) => inShardOrder(b, o.shards) };
  }
  const engine = await ShardedEngine.start({
    spec: o.spec,
    shards: o.shards,
    workers: o.ctx.cores,
    backend: o.backend,
  });
  o.ctx.log(`training: ${engine.describe()}`);
  return { engine, arrange: asIs };
}

function inShardOrder(batches: BatchProvider, shards: number): BatchProvider {
  return async function* (epoch, rng): AsyncGenerator<TrainBatch> {
    for await (const b of batches(epoch, rng)) {
      const order = shardOrder(b.x.shape[0], shards);
      const index = tf.tensor1d(order, 'int32');
      const moved: TrainBatch = {
        x: tf.gather(b.x, index),
        labels: Object.fromEntries(Object.entries(b.labels).map(([k, t]) => [k, tf.gather(t, index)])),
        indices: order.map((i) => b.indices[i]),
      };
      tf.dispose([index, b.x, ...Object.values(b.labels)]);
      yield moved;
    }
  };
}
