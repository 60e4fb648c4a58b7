// How a training kind runs its steps: sharded over worker threads (wasm, cpu), or in this process (micro_batch,
// or the native and webgpu backends, which use the machine's cores or a GPU by themselves).
import type { StageContext } from '../../contracts/stage-kind.js';
import { ShardedEngine, type ShardedEngineOptions } from '../../ml/train/parallel/engine.js';
import type { BackendName } from '../../ml/types.js';

export interface TrainingEngine {
  /** Present when the steps run on worker threads; close() it when the stage ends. */
  engine?: ShardedEngine;
  /** Micro-batch size for an in-process run. */
  microBatch?: number;
}

export async function trainingEngine(o: {
  ctx: Pick<StageContext, 'cores' | 'log'>;
  backend: BackendName;
  spec: ShardedEngineOptions['spec'];
  shards: number;
  microBatch: number | null;
  batchSize: number;
}): Promise<TrainingEngine> {
  if (o.microBatch) {
    o.ctx.log(`micro_batch ${o.microBatch}: training runs in this process on one core (shards has no effect)`);
    return { microBatch: o.microBatch };
  }
  if (o.backend === 'tensorflow' || o.backend === 'webgpu') {
    // Same shard math (per-shard BatchNorm, whole-batch loss), one shard after another.
    const chunk = Math.ceil(o.batchSize / o.shards);
    o.ctx.log(`${o.backend}: the ${o.shards} shards run one after another in this process`);
    return { microBatch: chunk < o.batchSize ? chunk : undefined };
  }
  const engine = await ShardedEngine.start({
    spec: o.spec,
    shards: o.shards,
    workers: o.ctx.cores,
    backend: o.backend,
  });
  o.ctx.log(`training: ${engine.describe()}`);
  return { engine };
}
