// A pool of worker threads, each with its own TensorFlow.js + wasm instance (tfjs cannot multithread wasm
// under Node; separate instances can run on separate cores). Used for sharded training (engine.ts) and to
// embed image files in parallel (validation, evaluate).
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { ImageCache } from '../../data/cache.js';
import { rgb8ToFloat } from '../../data/image.js';
import type { EmbedOptions, FileEmbedder } from '../../eval/embed.js';
import type { BackendName } from '../../types.js';
import type { FromWorker, NetSpec, ToWorker, WorkerInit } from './protocol.js';

const workerUrl = new URL('./worker.js', import.meta.url);

type Reply<T extends FromWorker['type']> = Extract<FromWorker, { type: T }>;

interface Slot {
  worker: Worker;
  waiting: Array<{ type: FromWorker['type']; resolve: (m: FromWorker) => void; reject: (e: Error) => void }>;
}

export class WorkerPool implements FileEmbedder {
  private broken: Error | undefined;
  private closed = false;

  private constructor(private readonly slots: Slot[]) {}

  /** Starts `workers` threads that each build `spec` (`replicas` copies of a trainable net) on `backend`. */
  static async start(spec: NetSpec, workers: number, backend: BackendName, replicas = 1): Promise<WorkerPool> {
    if (!(Number.isInteger(workers) && workers >= 1))
      throw new Error(`workers must be a positive integer (got ${workers})`);
    // GPU and native backends parallelise by themselves (and cannot read synchronously, as the workers do).
    if (backend !== 'wasm' && backend !== 'cpu') throw new Error(`worker pools run on wasm or cpu, not ${backend}`);
    const init: WorkerInit = { spec, backend, replicas };
    const slots: Slot[] = Array.from({ length: workers }, () => ({
      worker: new Worker(workerUrl, { workerData: init }),
      waiting: [],
    }));
    const pool = new WorkerPool(slots);
    slots.forEach((slot, i) => {
      slot.worker.on('message', (m: FromWorker) => pool.deliver(slot, i, m));
      slot.worker.on('error', (e) => pool.fail(new Error(`worker ${i}: ${e.message}`)));
      slot.worker.on('exit', (code) => {
        if (!pool.closed) pool.fail(new Error(`worker ${i} exited (code ${code}) before the pool was closed`));
      });
    });
    try {
      await Promise.all(slots.map((_, i) => pool.expect(i, 'ready')));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  get size(): number {
    return this.slots.length;
  }

  send(i: number, m: ToWorker, transfer?: ArrayBuffer[]): void {
    if (this.broken) throw this.broken;
    this.slots[i].worker.postMessage(m, transfer);
  }

  /** The next message from worker i, which must be of `type` (a worker answers in order). */
  expect<T extends FromWorker['type']>(i: number, type: T): Promise<Reply<T>> {
    if (this.broken) return Promise.reject(this.broken);
    const reply = new Promise<Reply<T>>((resolve, reject) => {
      this.slots[i].waiting.push({ type, resolve: resolve as (m: FromWorker) => void, reject });
    });
    // A caller that stopped waiting (its step already failed) must not leave an unhandled rejection behind.
    reply.catch(() => undefined);
    return reply;
  }

  /** Sends m to every worker and waits for each one's reply of `type`. */
  async all<T extends FromWorker['type']>(m: ToWorker | ((i: number) => ToWorker), type: T): Promise<Array<Reply<T>>> {
    const replies = this.slots.map((_, i) => this.expect(i, type));
    this.slots.forEach((_, i) => this.send(i, typeof m === 'function' ? m(i) : m));
    return Promise.all(replies);
  }

  private deliver(slot: Slot, i: number, m: FromWorker): void {
    if (m.type === 'error') {
      const e = new Error(`worker ${i}: ${m.message}`);
      if (m.stack && process.env.FACEPIPE_DEBUG) e.stack = m.stack;
      return this.fail(e);
    }
    const next = slot.waiting.shift();
    if (!next) return this.fail(new Error(`worker ${i} sent an unexpected '${m.type}'`));
    if (next.type !== m.type) return this.fail(new Error(`worker ${i} sent '${m.type}', expected '${next.type}'`));
    next.resolve(m);
  }

  /** The first failure breaks the pool: every pending and later request rejects with it. */
  fail(e: Error): void {
    if (!this.broken) this.broken = e;
    for (const slot of this.slots) for (const w of slot.waiting.splice(0)) w.reject(this.broken);
  }

  /**
   * Embeddings of `files` (relative to `root`) in chunks of opts.batchSize at fixed boundaries, so the result
   * does not depend on the number of workers; chunks go to whichever worker is free. Images are decoded here.
   */
  async embedFiles(root: string, files: string[], opts: EmbedOptions): Promise<{ dim: number; rows: Float32Array[] }> {
    const cache = opts.cache ?? new ImageCache();
    const size = { width: opts.inputSize, height: opts.inputSize };
    const per = opts.inputSize * opts.inputSize * 3;
    const chunks: Array<[number, number]> = [];
    for (let s = 0; s < files.length; s += opts.batchSize) chunks.push([s, Math.min(opts.batchSize, files.length - s)]);
    const rows: Float32Array[] = new Array<Float32Array>(files.length);
    let dim = 0;
    let next = 0;
    const load = async ([start, n]: [number, number]) => {
      const data = new Float32Array(n * per);
      const images = await Promise.all(files.slice(start, start + n).map((f) => cache.get(join(root, f), size)));
      images.forEach((img, i) => rgb8ToFloat(img, data, i * per));
      return data;
    };
    const run = async (w: number) => {
      while (next < chunks.length) {
        if (opts.signal?.aborted) throw new Error('embedding aborted');
        const chunk = chunks[next++];
        const x = await load(chunk);
        const reply = this.expect(w, 'embedded');
        this.send(
          w,
          { type: 'embed', x, n: chunk[1], inputShape: [opts.inputSize, opts.inputSize, 3], flip: !!opts.flipAverage },
          [x.buffer],
        );
        const r = await reply;
        dim = r.dim;
        for (let i = 0; i < chunk[1]; i++) rows[chunk[0] + i] = r.rows.subarray(i * dim, (i + 1) * dim);
      }
    };
    await Promise.all(this.slots.map((_, w) => run(w)));
    return { dim, rows };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fail(new Error('the worker pool was closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
