// The one decision for a stage: cached, run (and why), not retried, or (when upstream outputs are not known yet)
// may run; and which stages a run takes at all (targets) and which it forces. `facepipe run`, `status` and
// `run --dry-run` all ask these functions.
import type { CacheEntry, EpochStateRecord, KeyMaterial, StageRecord } from '../contracts/records.js';
import { didYouMean, FacepipeError } from '../core/errors.js';
import type { StageSpec } from '../load/load.js';
import type { StageGraph } from './graph.js';
import { definitionChanges, epochPrefixOf, rerunReasons, stageKey, type EpochPrefixInfo } from './keys.js';
import type { Reason } from './reasons.js';

export interface CacheView {
  lookup(key: string): Promise<CacheEntry>;
  /** The intact epoch state of `prefix` at the highest epoch <= atMost (epoch-prefix reuse), if any. */
  bestEpochState?(prefix: string, atMost: number): Promise<EpochStateRecord | undefined>;
}

export type Decision =
  | { action: 'cached'; key: string; record: StageRecord }
  | {
      action: 'run';
      key?: string;
      reasons: Reason[];
      /** Kinds with epoch-prefix reuse: the prefix key (or why there is none), and the cached state to start from. */
      prefix?: EpochPrefixInfo;
      continueFrom?: EpochStateRecord;
    }
  | { action: 'not-retried'; key: string; reasons: Reason[]; error: string }
  | { action: 'maybe'; reasons: Reason[] };

export interface DecideInput {
  stage: StageSpec;
  /** The key material, or undefined when an upstream stage will rerun first (status only). */
  material: KeyMaterial | undefined;
  /** What this stage of this experiment ran with last time. */
  last: KeyMaterial | undefined;
  /** The option that forces a rerun ('--force', '--force all', '--force-downstream triarchy'), or undefined. */
  forced: string | undefined;
  /** Input name -> what to call it in a reason (an upstream stage's name or a path). */
  inputLabels: Record<string, string>;
  /** Upstream stages that will rerun (when material is undefined). */
  rerunningUpstream?: string[];
  cache: CacheView;
  /** Keys that failed before in this watch session: not retried until the key changes. */
  failedBefore?: (key: string) => string | undefined;
}

export async function decide(o: DecideInput): Promise<Decision> {
  const forced: Reason[] = o.forced ? [{ kind: 'forced', by: o.forced }] : [];
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
  const prefix = epochPrefixOf(o.stage, o.material);
  // Forcing means computing again: no cached epoch state is used either.
  if (o.forced) return { action: 'run', key, reasons: forced, prefix };
  const reasons: Reason[] =
    entry.state === 'damaged'
      ? [{ kind: 'cached-output-damaged' }]
      : rerunReasons(o.stage, o.material, o.last, o.inputLabels);
  if (!prefix) return { action: 'run', key, reasons };
  const path = `${o.stage.name}.${prefix.param}`;
  const epochsChanged = reasons.some((r) => r.kind === 'params-changed' && r.changes.some((c) => c.path === path));
  if (prefix.blocked !== undefined)
    return {
      action: 'run',
      key,
      reasons: epochsChanged ? [...reasons, { kind: 'prefix-blocked', why: prefix.blocked }] : reasons,
      prefix,
    };
  const from = await o.cache.bestEpochState?.(prefix.prefix, prefix.epoch);
  if (!from) return { action: 'run', key, reasons, prefix };
  return { action: 'run', key, reasons: continuing(reasons, path, prefix, from.epoch), prefix, continueFrom: from };
}

/**
 * The reasons of a run that starts from a cached epoch: when the epochs param is the only change, one reason says
 * both ("epochs 100 -> 200, continuing from the cached epoch 100"); otherwise the continuation is added.
 */
function continuing(reasons: Reason[], path: string, prefix: EpochPrefixInfo, from: number): Reason[] {
  const only = reasons.length === 1 && reasons[0].kind === 'params-changed' ? reasons[0].changes : undefined;
  const before = only?.length === 1 && only[0].path === path ? Number(only[0].before) : undefined;
  const reason: Reason = { kind: 'continuing', param: prefix.param, from, to: prefix.epoch };
  if (before !== undefined && Number.isInteger(before)) return [{ ...reason, before }];
  return [...reasons, reason];
}

/** What the command line asked for, as in Snakemake: targets, -f STAGE, -F (--force all), -R STAGE. */
export interface Selection {
  /** Stages to rerun even if cached: names, `experiment/stage` ids, or 'all'. */
  force?: string[];
  /** Stages to rerun together with every stage downstream of them. */
  forceDownstream?: string[];
  /** Run only these stages and the stages they need (default: every stage). */
  until?: string[];
}

export interface StagePick {
  /** The stages to take, in graph order. */
  stages: StageSpec[];
  /** Forced stage name -> the option that forced it. */
  forced: Map<string, string>;
}

function closure(start: string[], edges: Map<string, string[]>): Set<string> {
  const seen = new Set<string>();
  const todo = [...start];
  while (todo.length) {
    const s = todo.pop()!;
    if (seen.has(s)) continue;
    seen.add(s);
    todo.push(...(edges.get(s) ?? []));
  }
  return seen;
}

/** The stages of one experiment a run takes, and which of them it forces. `id` qualifies a name (sweeps). */
export function pickStages(graph: StageGraph, id: (stage: string) => string, sel: Selection): StagePick {
  const until = sel.until ?? [];
  const taken = until.length ? closure(until, graph.upstream) : undefined;
  const forced = new Map<string, string>();
  const force = sel.force ?? [];
  for (const s of graph.order) {
    if (force.includes('all')) forced.set(s.name, '--force all');
    else if (force.includes(s.name) || force.includes(id(s.name))) forced.set(s.name, '--force');
  }
  for (const d of sel.forceDownstream ?? [])
    for (const s of closure([d], graph.downstream)) if (!forced.has(s)) forced.set(s, `--force-downstream ${d}`);
  return { stages: graph.order.filter((s) => !taken || taken.has(s.name)), forced };
}

/** Bad input when an option names a stage the pipeline does not have (checked before anything runs). */
export function checkSelection(graph: StageGraph, sel: Selection): void {
  const names = [...graph.byName.keys()];
  const check = (option: string, given: string, allowAll: boolean, qualified: boolean) => {
    if (allowAll && given === 'all') return;
    const name = qualified && given.includes('/') ? given.slice(given.indexOf('/') + 1) : given;
    if (graph.byName.has(name)) return;
    const guess = didYouMean(name, allowAll ? [...names, 'all'] : names);
    throw new FacepipeError({
      code: 'unknown-stage',
      file: 'command line',
      message: `${option} ${given}: no stage named '${name}'${guess ? `; did you mean '${guess}'?` : ''}`,
      hint: `stages: ${names.join(', ')}${allowAll ? "; or 'all' (every stage)" : ''}`,
    });
  };
  for (const f of sel.force ?? []) check('--force', f, true, true);
  for (const f of sel.forceDownstream ?? []) check('--force-downstream', f, false, false);
  for (const u of sel.until ?? []) check('--until', u, false, false);
}
