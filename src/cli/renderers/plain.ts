// One line per state change: readable in CI logs and files. Progress lines are sampled; validation results
// are always printed.
import type { RunEvent } from '../../contracts/events.js';
import { stepsText, sweepText, validationText } from './progress-text.js';

export function plainRenderer(write: (s: string) => void = (s) => process.stdout.write(s), verbose = false) {
  const lastProgress = new Map<string, number>();
  let lastBackend: string | undefined;
  // At most one progress line (text or steps) every 2 s per stage, so long trainings don't flood the log.
  const sampled = (stage: string) => {
    const now = Date.now();
    if (now - (lastProgress.get(stage) ?? 0) < 2000) return false;
    lastProgress.set(stage, now);
    return true;
  };
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
      case 'stage-progress':
        if (sampled(e.stage)) write(`[${t}] ${e.stage}: ${e.text}\n`);
        break;
      case 'stage-steps':
        if (sampled(e.stage)) write(`[${t}] ${e.stage}: ${stepsText(e)}\n`);
        break;
      case 'stage-validation':
        write(`[${t}] ${e.stage}: ${validationText(e)}\n`);
        break;
      case 'stage-log':
        if (verbose) write(`  ${e.stage}| ${e.line}\n`);
        break;
      case 'run-end':
        write(`[${t}] run ${e.status} in ${(e.durationMs / 1000).toFixed(2)} s; record: ${e.recordPath}\n`);
        break;
      case 'warning':
        write(`[${t}] warning: ${e.message}\n`);
        break;
      case 'sweep-rung':
      case 'sweep-ranking':
        write(sweepText(e, t));
        break;
    }
  };
}
