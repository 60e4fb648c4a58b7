// Progress events worded for people, the same in the listr2 view and the plain lines: a step bar with
// step/total, elapsed time and ETA, and validation results.
import type { RunEvent } from '../../contracts/events.js';

type Steps = Extract<RunEvent, { type: 'stage-steps' }>;
type Validation = Extract<RunEvent, { type: 'stage-validation' }>;

/** 8 s, 1m05s, 2h03m. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** [########............] for `step` of `total`. */
export function bar(step: number, total: number, width = 20): string {
  const filled = total > 0 ? Math.min(width, Math.max(0, Math.round((step / total) * width))) : 0;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

const fig = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(3));

/** "[#####...............] 45/180 steps, epoch 3/12, loss 1.23, 12 s elapsed, ETA 36 s" */
export function stepsText(e: Steps): string {
  const parts = [`${bar(e.step, e.total)} ${e.step}/${e.total} steps`];
  if (e.epoch !== undefined && e.epochs !== undefined) parts.push(`epoch ${e.epoch}/${e.epochs}`);
  if (e.loss !== undefined) parts.push(`loss ${fig(e.loss)}`);
  parts.push(`${formatDuration(e.elapsedMs)} elapsed`);
  parts.push(e.etaMs !== undefined ? `ETA ${formatDuration(e.etaMs)}` : 'ETA ?');
  return parts.join(', ');
}

/** "validation after epoch 3/10: accuracy 0.8125, auc 0.9031, eer 0.1500 (best so far)" */
export function validationText(e: Validation): string {
  const figures = Object.entries(e.metrics)
    .map(([k, v]) => `${k} ${v.toFixed(4)}`)
    .join(', ');
  return `validation after epoch ${e.epoch}/${e.epochs}: ${figures}${e.best ? ' (best so far)' : ''}`;
}

type SweepEvent = Extract<RunEvent, { type: 'sweep-rung' | 'sweep-ranking' }>;

/** A halving rung starting, or its ranking: a line, then one per experiment. `t` is the time stamp, if any. */
export function sweepText(e: SweepEvent, t?: string): string {
  const at = (t ? `[${t}] ` : '') + (e.bracket ? `hyperband bracket ${e.bracket.index}/${e.bracket.of}, ` : '');
  if (e.type === 'sweep-rung')
    return `${at}halving rung ${e.rung}/${e.rungs}: ${e.experiments.length} experiment${e.experiments.length === 1 ? '' : 's'} to ${e.param} ${e.epochs}${e.rung === e.rungs ? ' (the last rung: every stage)' : ''}\n`;
  const lines = e.ranked.map((r) => {
    const value = r.value === undefined ? '-' : String(Number(r.value.toPrecision(4)));
    return `  ${String(r.rank).padStart(2)}. ${r.experiment}  ${e.metric} ${value}  ${r.state}`;
  });
  return `${at}halving rung ${e.rung}/${e.rungs} ranked by ${e.metric} (${e.goal}) at ${e.epochs} epoch${e.epochs === 1 ? '' : 's'}:\n${lines.join('\n')}\n`;
}
