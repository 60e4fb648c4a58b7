// Entry point of a stage's own process: a crash here (including a wasm abort) cannot take the runner down.
// Exits when the runner goes away (IPC disconnect), so a kill -9 of the runner leaves no stray work.
import { executeJob } from '../../job.js';
import type { FromWorker, ToWorker } from './protocol.js';

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

process.on('message', (m: ToWorker) => {
  if (m.type === 'abort') {
    controller.abort();
    return;
  }
  void executeJob(
    m.job,
    {
      progress: (text) => send({ type: 'progress', text }),
      report: (report) => send({ type: 'report', report }),
      log: (line) => send({ type: 'log', line }),
      metrics: (values) => send({ type: 'metrics', values }),
    },
    controller.signal,
  ).then((outcome) => {
    send({ type: 'outcome', outcome });
    // Let IPC flush, then leave even if a library keeps handles open.
    setTimeout(() => process.exit(0), 50);
  });
});
