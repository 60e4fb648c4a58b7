// One line per state change: readable in CI logs and files.
import type { RunEvent } from '../../contracts/events.js';

export function plainRenderer(write: (s: string) => void = (s) => process.stdout.write(s), verbose = false) {
  const lastProgress = new Map<string, number>();
  let lastBackend: string | undefined;
  return (e: RunEvent) => {
    const t = new Date().toISOString().slice(11, 19);
    switch (e.type) {
      case 'run-start':
        write(`[${t}] run ${e.runId}: ${e.pipeline} (${e.stages.length} stages, jobs ${e.jobs})\n`);
        break;
      case 'lock-wait':
        write(`[${t}] waiting for the workspace lock held by ${e.holder}\n`);
        break;
      case 'backend':
        // Said once: again only if a later stage runs on another backend.
        if (e.backend !== lastBackend) {
          lastBackend = e.backend;
          write(`[${t}] TensorFlow.js backend: ${e.backend} (first used by ${e.stage})\n`);
        }
        break;
      case 'stage-state':
        if (e.state === 'waiting') break;
        write(
          `[${t}] ${e.stage}: ${e.state}${e.state === 'running' || e.state === 'skipped' || e.state === 'interrupted' ? ` (${e.reason})` : ''}${e.durationMs && e.state !== 'cached' ? ` in ${(e.durationMs / 1000).toFixed(1)} s` : ''}${e.error ? `\n  ${e.error}` : ''}\n`,
        );
        break;
      case 'stage-progress': {
        // At most one progress line every 2 s per stage, so long trainings don't flood the log.
        const now = Date.now();
        if (now - (lastProgress.get(e.stage) ?? 0) >= 2000) {
          lastProgress.set(e.stage, now);
          write(`[${t}] ${e.stage}: ${e.text}\n`);
        }
        break;
      }
      case 'stage-log':
        if (verbose) write(`  ${e.stage}| ${e.line}\n`);
        break;
      case 'run-end':
        write(`[${t}] run ${e.status} in ${(e.durationMs / 1000).toFixed(2)} s; record: ${e.recordPath}\n`);
        break;
      case 'warning':
        write(`[${t}] warning: ${e.message}\n`);
        break;
    }
  };
}
