// The one progress event type. The runner emits these; every renderer (listr2, plain lines, JSON lines)
// and the run record consume them, so what the user sees and what is recorded cannot disagree.
import type { Reason } from './reasons.js';

export type StageState = 'waiting' | 'cached' | 'running' | 'done' | 'failed' | 'skipped' | 'interrupted';

/** Where a training stage is: its step out of all steps (all epochs), reported by the stage (ctx.report). */
export interface StepReport {
  kind: 'steps';
  /** 1-based, counted over all epochs (a resumed stage starts past 0). */
  step: number;
  total: number;
  epoch?: number;
  epochs?: number;
  /** The last step's loss. */
  loss?: number;
}

/** A validation result of a training stage: always shown, never sampled away. */
export interface ValidationReport {
  kind: 'validation';
  epoch: number;
  epochs: number;
  /** E.g. { accuracy, auc, eer }. */
  metrics: Record<string, number>;
  /** The best so far (the checkpoint kept). */
  best: boolean;
}

/** What a stage reports as data, besides its free-text progress line. */
export type StageReport = StepReport | ValidationReport;

export type RunEvent =
  | { type: 'run-start'; runId: string; pipeline: string; experiment: string; stages: string[]; jobs: number }
  | { type: 'lock-wait'; holder: string }
  | {
      type: 'stage-state';
      stage: string;
      state: StageState;
      /** Why, as data, and worded once by plan/reasons.ts for people. */
      reasons?: Reason[];
      reason?: string;
      durationMs?: number;
      error?: string;
      /** The stage's log file, relative to the workspace. */
      log?: string;
    }
  | { type: 'warning'; message: string }
  | { type: 'stage-progress'; stage: string; text: string }
  /** A step report timed by the runner: elapsed since the stage started, ETA from this attempt's step rate. */
  | ({ type: 'stage-steps'; stage: string; elapsedMs: number; etaMs?: number } & Omit<StepReport, 'kind'>)
  | ({ type: 'stage-validation'; stage: string } & Omit<ValidationReport, 'kind'>)
  | { type: 'stage-log'; stage: string; line: string }
  | { type: 'backend'; stage: string; backend: string }
  | { type: 'run-end'; runId: string; status: 'ok' | 'failed' | 'interrupted'; durationMs: number; recordPath: string }
  /** The end of a sweep: its best point on the selected metric (absent when no experiment has the metric). */
  | {
      type: 'sweep-best';
      metric: string;
      goal: 'max' | 'min';
      experiments: number;
      /** How many experiments have the metric. */
      scored: number;
      experiment?: string;
      point?: Record<string, unknown>;
      value?: number;
      /** Seed replicates: the best point is a group judged by its mean (value); its std and size. */
      replicates?: { n: number; std: number | null; experiments: string[] };
    }
  /** A halving sweep starts a rung: these experiments train to `epochs` (the last rung: every stage). */
  | {
      type: 'sweep-rung';
      rung: number;
      rungs: number;
      /** Hyperband: which bracket (1-based), of how many. */
      bracket?: { index: number; of: number };
      param: string;
      epochs: number;
      experiments: string[];
    }
  /** A rung ranked its candidates: each experiment's place and what it does next. */
  | {
      type: 'sweep-ranking';
      rung: number;
      rungs: number;
      bracket?: { index: number; of: number };
      epochs: number;
      metric: string;
      goal: 'max' | 'min';
      ranked: Array<{ experiment: string; rank: number; value?: number; state: string; why: string }>;
    };

export type EventSink = (event: RunEvent) => void;
