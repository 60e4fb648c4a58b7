// The one decision for a stage: cached, run (and why), not retried, or (when upstream outputs are not known yet)
// may run. `facepipe run`, `status` and `run --dry-run` all ask this function.
import type { CacheEntry, KeyMaterial, StageRecord } from '../contracts/records.js';
import type { StageSpec } from '../load/load.js';
import { definitionChanges, rerunReasons, stageKey } from './keys.js';
import type { Reason } from './reasons.js';

export interface CacheView {
  lookup(key: string): Promise<CacheEntry>;
}

export type Decision =
  | { action: 'cached'; key: string; record: StageRecord }
  | { action: 'run'; key?: string; reasons: Reason[] }
  | { action: 'not-retried'; key: string; reasons: Reason[]; error: string }
  | { action: 'maybe'; reasons: Reason[] };

export interface DecideInput {
  stage: StageSpec;
  /** The key material, or undefined when an upstream stage will rerun first (status only). */
  material: KeyMaterial | undefined;
  /** What this stage of this experiment ran with last time. */
  last: KeyMaterial | undefined;
  forced: boolean;
  /** Input name -> what to call it in a reason (an upstream stage's name or a path). */
  inputLabels: Record<string, string>;
  /** Upstream stages that will rerun (when material is undefined). */
  rerunningUpstream?: string[];
  cache: CacheView;
  /** Keys that failed before in this watch session: not retried until the key changes. */
  failedBefore?: (key: string) => string | undefined;
}

export async function decide(o: DecideInput): Promise<Decision> {
  const forced: Reason[] = o.forced ? [{ kind: 'forced' }] : [];
  if (!o.material) {
    const own = [...forced, ...(o.last ? definitionChanges(o.stage, o.last) : [{ kind: 'never-run' } as const])];
    return own.length
      ? { action: 'run', reasons: own }
      : { action: 'maybe', reasons: [{ kind: 'upstream-may-change', stages: o.rerunningUpstream ?? [] }] };
  }
  const key = stageKey(o.material);
  const entry = await o.cache.lookup(key);
  if (entry.state === 'intact' && !o.forced) return { action: 'cached', key, record: entry.record };
  const error = o.failedBefore?.(key);
  if (error !== undefined && !o.forced)
    return { action: 'not-retried', key, error, reasons: [{ kind: 'failed-before', error }] };
  if (o.forced) return { action: 'run', key, reasons: forced };
  if (entry.state === 'damaged') return { action: 'run', key, reasons: [{ kind: 'cached-output-damaged' }] };
  return { action: 'run', key, reasons: rerunReasons(o.stage, o.material, o.last, o.inputLabels) };
}
