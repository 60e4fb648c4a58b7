// Cache keys and the reasons a stage (re)runs. A key covers exactly: kind, kind version, resolved params and
// the digests of the inputs it reads. No timestamps, no absolute paths: a moved or cloned workspace keeps its cache.
import { canonicalJson, hashValue } from '../core/hash.js';
import { isPlainObject } from '../core/objects.js';
import type { StageSpec } from '../load/load.js';

export interface KeyMaterial {
  kind: string;
  kindVersion: string;
  params: Record<string, unknown>;
  /** Input name -> content digest. */
  inputs: Record<string, string>;
}

export function keyMaterial(stage: StageSpec, inputDigests: Record<string, string>): KeyMaterial {
  return { kind: stage.kind.name, kindVersion: stage.kind.version, params: stage.params, inputs: inputDigests };
}

export function stageKey(m: KeyMaterial): string {
  return hashValue(m);
}

/** Flatten params to dotted paths, so that changes can be named key by key. */
export function flattenParams(obj: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (isPlainObject(obj) && Object.keys(obj).length) {
    for (const k of Object.keys(obj).sort()) flattenParams(obj[k], prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out[prefix] = canonicalJson(obj ?? null);
  }
  return out;
}

/** "loss.margin 0.3 -> 0.5", one entry per changed leaf, prefixed with the stage name. */
export function diffParams(stage: string, before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const a = flattenParams(before);
  const b = flattenParams(after);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => a[k] !== b[k]).map((k) => `${stage}.${k} ${a[k] ?? '(unset)'} -> ${b[k] ?? '(unset)'}`);
}

/** Why a stage whose key has no valid cache entry must run, from what it ran with last time. */
export function explainRerun(
  stage: StageSpec,
  now: KeyMaterial,
  last: KeyMaterial | undefined,
  inputLabels: Record<string, string>,
): string {
  if (!last) return 'never run';
  const reasons: string[] = [];
  if (last.kind !== now.kind) reasons.push(`kind changed: ${last.kind} -> ${now.kind}`);
  else if (last.kindVersion !== now.kindVersion)
    reasons.push(`kind version changed: ${last.kindVersion} -> ${now.kindVersion}`);
  const pd = diffParams(stage.name, last.params, now.params);
  if (pd.length)
    reasons.push(`params changed: ${pd.slice(0, 4).join(', ')}${pd.length > 4 ? `, and ${pd.length - 4} more` : ''}`);
  const changed = Object.keys({ ...last.inputs, ...now.inputs }).filter((k) => last.inputs[k] !== now.inputs[k]);
  if (changed.length) reasons.push(`input changed: ${changed.map((k) => inputLabels[k] ?? k).join(', ')}`);
  return reasons.length ? reasons.join('; ') : 'not in the cache (last run did not finish)';
}
