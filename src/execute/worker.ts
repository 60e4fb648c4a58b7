// Entry point of a stage's own process: a crash here (including a wasm abort) cannot take the runner down.
// Exits when the runner goes away (IPC disconnect), so a kill -9 of the runner leaves no stray work.
import type { StageContext, StageRun } from '../contracts/stage-kind.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';

const send = (m: FromWorker) => {
  if (process.connected) process.send!(m);
};
const controller = new AbortController();

process.on('disconnect', () => {
  controller.abort();
  setTimeout(() => process.exit(1), 2000).unref();
});
process.on('SIGTERM', () => {
  controller.abort();
  setTimeout(() => process.exit(143), 5000).unref();
});
process.on('SIGINT', () => {
  /* the runner decides; it sends 'abort' */
});

process.on('message', async (m: ToWorker) => {
  if (m.type === 'abort') {
    controller.abort();
    return;
  }
  if (m.type !== 'start') return;
  try {
    const mod = (await import(m.runModule)) as { run?: StageRun; default?: StageRun };
    const run = mod.run ?? mod.default;
    if (typeof run !== 'function') throw new Error(`${m.runModule} does not export run(ctx)`);
    const ctx: StageContext = {
      ...m.ctx,
      progress: (text) => send({ type: 'progress', text }),
      log: (line) => send({ type: 'log', line }),
      metrics: (values) => send({ type: 'metrics', values }),
      signal: controller.signal,
    };
    await run(ctx);
    if (controller.signal.aborted) throw new Error('aborted');
    send({ type: 'done' });
  } catch (e) {
    const err = e as Error;
    send({ type: 'error', message: err?.message ?? String(e), stack: err?.stack, aborted: controller.signal.aborted });
  }
  // Let IPC flush, then leave even if a library keeps handles open.
  setTimeout(() => process.exit(0), 50);
});
