// Reads one batch ahead, so the main thread decodes and augments the next batch while the workers compute
// the current step. The source is still consumed strictly in order (the RNG draws are the same).
import type { TrainBatch } from '../../data/batches.js';

export async function* prefetchBatches(
  source: AsyncIterable<TrainBatch> | Iterable<TrainBatch>,
): AsyncGenerator<TrainBatch> {
  const it = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  let next = Promise.resolve(it.next());
  try {
    for (;;) {
      const r = await next;
      if (r.done) return;
      next = Promise.resolve(it.next());
      yield r.value;
    }
  } finally {
    // Stopped early (abort, error): drop the batch read ahead and close the source.
    const r = await next.catch(() => undefined);
    if (r && !r.done) {
      r.value.x.dispose();
      for (const t of Object.values(r.value.labels)) t.dispose();
    }
    await it.return?.();
  }
}
