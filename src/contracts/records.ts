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
}

/** What a cache lookup found for a key. */
export type CacheEntry = { state: 'intact'; record: StageRecord } | { state: 'damaged' } | { state: 'absent' };
