// Cache keys and what changed since a stage last ran. A key covers exactly: kind, kind version, resolved params
// and the digests of the inputs it reads. No timestamps, no absolute paths: a moved or cloned workspace keeps
// its cache.
import type { KeyMaterial } from '../contracts/records.js';
import { prefixBlocker } from '../contracts/stage-kind.js';
import { canonicalJson, hashValue } from '../core/hash.js';
import { isPlainObject } from '../core/objects.js';
import type { StageSpec } from '../load/load.js';
import type { ParamChange, Reason } from './reasons.js';

export type { KeyMaterial };

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

/** One entry per changed leaf, its path prefixed with the stage name. */
export function diffParams(
  stage: string,
  before: Record<string, unknown>,
  after: Record<string, unknown>,
): ParamChange[] {
  const a = flattenParams(before);
  const b = flattenParams(after);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => a[k] !== b[k]).map((k) => ({ path: `${stage}.${k}`, before: a[k], after: b[k] }));
}

/** What differs in a stage's own definition (kind, version, params) from the last time it ran. */
export function definitionChanges(stage: StageSpec, last: KeyMaterial): Reason[] {
  const reasons: Reason[] = [];
  if (last.kind !== stage.kind.name) reasons.push({ kind: 'kind-changed', before: last.kind, after: stage.kind.name });
  else if (last.kindVersion !== stage.kind.version)
    reasons.push({ kind: 'kind-version-changed', before: last.kindVersion, after: stage.kind.version });
  const changes = diffParams(stage.name, last.params, stage.params);
  if (changes.length) reasons.push({ kind: 'params-changed', changes });
  return reasons;
}

/** Why a stage whose key has no cache entry must run, from what it ran with last time. */
export function rerunReasons(
  stage: StageSpec,
  now: KeyMaterial,
  last: KeyMaterial | undefined,
  inputLabels: Record<string, string>,
): Reason[] {
  if (!last) return [{ kind: 'never-run' }];
  const reasons = definitionChanges(stage, last);
  const changed = Object.keys({ ...last.inputs, ...now.inputs }).filter((k) => last.inputs[k] !== now.inputs[k]);
  if (changed.length) reasons.push({ kind: 'inputs-changed', inputs: changed.map((k) => inputLabels[k] ?? k) });
  return reasons.length ? reasons : [{ kind: 'not-finished' }];
}

/**
 * Epoch-prefix reuse. The prefix key covers what the key covers except the epochs param: runs that differ only in
 * their epoch count share it, and the state one left at epoch E is where another with more epochs starts.
 */
export function prefixKey(m: KeyMaterial, param: string): string {
  const params = Object.fromEntries(Object.entries(m.params).filter(([k]) => k !== param));
  return hashValue({ prefixOf: param, kind: m.kind, kindVersion: m.kindVersion, params, inputs: m.inputs });
}

/** What a stage's epoch prefix is for this material: reusable (its key and epoch), blocked (why), or none. */
export type EpochPrefixInfo =
  | { param: string; epoch: number; prefix: string; blocked?: undefined }
  | { param: string; epoch: number; prefix?: undefined; blocked: string };

export function epochPrefixOf(stage: StageSpec, m: KeyMaterial): EpochPrefixInfo | undefined {
  const ep = stage.kind.epochPrefix;
  const epoch = ep && m.params[ep.param];
  if (!ep || typeof epoch !== 'number' || !Number.isInteger(epoch)) return undefined;
  const blocked = prefixBlocker(stage.kind, m.params);
  return blocked ? { param: ep.param, epoch, blocked } : { param: ep.param, epoch, prefix: prefixKey(m, ep.param) };
}
