// Reads one batch ahead, so the main thread decodes and augments the next batch while the workers compute
// the current step. The source is still consumed strictly in order (the RNG draws are the same).
import type { TrainBatch } from '../../data/batches.js';

export async function* prefetchBatches(
  source: AsyncIterable<TrainBatch> | Iterable<TrainBatch>,
): AsyncGenerator<TrainBatch> {
  const it = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  // The read-ahead starts in a later macrotask: a step's own microtasks (reading the batch, handing it to the
  // workers) run first, so the workers never wait for the next batch to be prepared.
  const ahead = () => {
    const p = new Promise<IteratorResult<TrainBatch>>((resolve, reject) =>
      setImmediate(() => {
        try {
          resolve(it.next());
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      }),
    );
    // A failure surfaces where the batch is awaited, not as an unhandled rejection while a step runs.
    p.catch(() => undefined);
    return p;
  };
  let next = Promise.resolve(it.next());
  try {
    for (;;) {
      const r = await next;
      if (r.done) return;
      next = ahead();
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
