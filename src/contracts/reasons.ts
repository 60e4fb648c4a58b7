// Why a stage runs (or may run, or was skipped), as data: run.json and `--progress json` carry these;
// src/plan/reasons.ts words them for people.

export interface ParamChange {
  /** Dotted path, stage first: 'triarchy.loss.margin'. */
  path: string;
  /** Canonical JSON of the value before / after; undefined when the key was unset. */
  before?: string;
  after?: string;
}

export type Reason =
  | { kind: 'never-run' }
  /** `by`: the option that forced it ('--force', '--force all', '--force-downstream triarchy'). */
  | { kind: 'forced'; by?: string }
  | { kind: 'cached-output-damaged' }
  | { kind: 'kind-changed'; before: string; after: string }
  | { kind: 'kind-version-changed'; before: string; after: string }
  | { kind: 'params-changed'; changes: ParamChange[] }
  | { kind: 'inputs-changed'; inputs: string[] }
  | { kind: 'not-finished' }
  | { kind: 'failed-before'; error: string }
  | { kind: 'upstream-may-change'; stages: string[] }
  | { kind: 'upstream-not-done'; stage: string; state: string }
  | { kind: 'interrupted-before-start' }
  | { kind: 'run-stopped'; error: string }
  | { kind: 'resuming-checkpoint' }
  /**
   * Epoch-prefix reuse: the run trains from a cached state at epoch `from` to `to`; `before` is the epochs param's
   * last value when it is the only change (the reason then replaces 'params-changed').
   */
  | { kind: 'continuing'; param: string; from: number; to: number; before?: number }
  /** A cached epoch state exists but these params make the path depend on the epoch count. */
  | { kind: 'prefix-blocked'; why: string };
