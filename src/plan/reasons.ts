// formatReasons() is the one place that words the reasons a stage runs (or may run, or was skipped) for people.
import { canonicalJson } from '../core/hash.js';

import type { ParamChange, Reason } from '../contracts/reasons.js';

export type { ParamChange, Reason };

/** At most this many param changes are spelled out; the rest are counted. */
const MAX_CHANGES = 4;

export function formatParamChange(c: ParamChange): string {
  return `${c.path} ${c.before ?? '(unset)'} -> ${c.after ?? '(unset)'}`;
}

export function formatReason(r: Reason): string {
  switch (r.kind) {
    case 'never-run':
      return 'never run';
    case 'forced':
      return `forced (${r.by ?? '--force'})`;
    case 'cached-output-damaged':
      return 'cached output missing or corrupt';
    case 'kind-changed':
      return `kind changed: ${r.before} -> ${r.after}`;
    case 'kind-version-changed':
      return `kind version changed: ${r.before} -> ${r.after}`;
    case 'params-changed': {
      const shown = r.changes.slice(0, MAX_CHANGES).map(formatParamChange).join(', ');
      const more = r.changes.length - MAX_CHANGES;
      return `params changed: ${shown}${more > 0 ? `, and ${more} more` : ''}`;
    }
    case 'inputs-changed':
      return `input changed: ${r.inputs.join(', ')}`;
    case 'not-finished':
      return 'not in the cache (last run did not finish)';
    case 'failed-before':
      return 'not retried: it failed with these exact inputs and params; change one to retry';
    case 'upstream-may-change':
      return `input may change: ${r.stages.join(', ')} will rerun (stays cached if its outputs are unchanged)`;
    case 'upstream-not-done':
      return `upstream ${r.stage} ${r.state}`;
    case 'interrupted-before-start':
      return 'run interrupted before it started';
    case 'run-stopped':
      return `the run stopped: ${r.error}`;
    case 'resuming-checkpoint':
      return "resuming from the interrupted run's checkpoint";
    case 'continuing':
      return r.before !== undefined
        ? `${r.param} ${r.before} -> ${r.to}, continuing from the cached epoch ${r.from}`
        : `continuing from the cached epoch ${r.from} (of ${r.to})`;
    case 'prefix-blocked':
      return `no cached epoch reused: ${r.why}`;
  }
}

export function formatReasons(reasons: readonly Reason[]): string {
  return reasons.map(formatReason).join('; ');
}

/** Canonical text of a param value, as ParamChange holds it. */
export function paramText(v: unknown): string {
  return canonicalJson(v ?? null);
}
