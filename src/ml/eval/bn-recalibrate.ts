// "Precise BN": replaces every BatchNorm's moving statistics by the plain average of batch statistics over
// some batches. Moving averages lag behind the weights (badly with momentum 0.99 on a small dataset), and
// eval-mode embeddings then collapse; re-estimating them after training fixes that.
import * as tf from '@tensorflow/tfjs-core';

export interface RecalibratableNet {
  namedVariables(): Map<string, tf.Variable>;
  apply(x: tf.Tensor4D, training: boolean): Record<string, tf.Tensor>;
}

/**
 * Runs training-mode forward passes (no gradients) over `batches` and sets each moving mean / variance to
 * the average of the batch statistics. The net's BN layers update moving = m * moving + (1 - m) * batch,
 * so the batch statistic is recovered as (new - m * old) / (1 - m); `momentumOf(name)` gives m per variable.
 * Returns the number of batches used.
 */
export async function recalibrateBatchNorm(
  net: RecalibratableNet,
  batches: AsyncIterable<tf.Tensor4D> | Iterable<tf.Tensor4D>,
  momentumOf: (variableName: string) => number,
): Promise<number> {
  const stats = [...net.namedVariables()].filter(([name]) => /moving_(mean|variance)$/.test(name));
  const sums: tf.Tensor[] = stats.map(([, v]) => tf.keep(tf.zerosLike(v) as tf.Tensor));
  let count = 0;
  try {
    for await (const x of batches) {
      try {
        const before = stats.map(([, v]) => tf.keep(v.clone()));
        tf.tidy(() => {
          net.apply(x, true);
        });
        tf.tidy(() => {
          stats.forEach(([name, v], i) => {
            const m = momentumOf(name);
            const batch = tf.div(tf.sub(v, tf.mul(before[i], m)), 1 - m);
            const next = tf.keep(tf.add(sums[i], batch));
            sums[i].dispose();
            sums[i] = next;
          });
        });
        tf.dispose(before);
        count++;
      } finally {
        x.dispose();
      }
    }
    if (count > 0) tf.tidy(() => stats.forEach(([, v], i) => v.assign(tf.div(sums[i], count))));
    return count;
  } finally {
    tf.dispose(sums);
  }
}
