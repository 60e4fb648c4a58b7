// What the store keeps about a completed stage, shared by the planner (is it cached, and why not), the
// runner and every executor (a job commits its own record).

/** Everything a stage's cache key covers. */
export interface KeyMaterial {
  kind: string;
  kindVersion: string;
  params: Record<string, unknown>;
  /** Input name -> content digest. */
  inputs: Record<string, string>;
}

export type OutputType = 'file' | 'dir';

export interface StoredOutput {
  type: OutputType;
  digest: string;
  /** A file output that was executable (a folder's manifest keeps this per file). */
  exec?: true;
}

/** The commit point of a stage: written last, after every object it names is in the store. */
export interface StageRecord {
  key: string;
  stage: string;
  material: KeyMaterial;
  outputs: Record<string, StoredOutput>;
  completedAt: string;
  durationMs: number;
  metrics: Record<string, number | string>;
  /** Training began from a cached epoch state (epoch-prefix reuse): its epoch and the stage key that left it. */
  continuedFrom?: { epoch: number; key: string };
}

/**
 * A stage's state at an epoch (kinds with epoch-prefix reuse), in the store so that a run with more epochs and the
 * same other params continues from it: .facepipe/store/epochs/<prefix>/<epoch>.json, sealed, naming a folder object.
 */
export interface EpochStateRecord {
  /** The prefix key: a hash of the key material without the epochs param (plan/keys.ts prefixKey). */
  prefix: string;
  /** The epochs param's name. */
  param: string;
  epoch: number;
  /** The stage key of the run that left it, and that run's key material (its epochs param = epoch). */
  key: string;
  stage: string;
  material: KeyMaterial;
  /** The snapshot of the stage's scratch folder at that epoch. */
  state: StoredOutput;
  completedAt: string;
}

/** What a cache lookup found for a key. */
export type CacheEntry = { state: 'intact'; record: StageRecord } | { state: 'damaged' } | { state: 'absent' };
