// The one progress event type. The runner emits these; every renderer (listr2, plain lines, JSON lines)
// and the run record consume them, so what the user sees and what is recorded cannot disagree.
import type { Reason } from './reasons.js';

export type StageState = 'waiting' | 'cached' | 'running' | 'done' | 'failed' | 'skipped' | 'interrupted';

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
  | { type: 'stage-log'; stage: string; line: string }
  | { type: 'backend'; stage: string; backend: string }
  | { type: 'run-end'; runId: string; status: 'ok' | 'failed' | 'interrupted'; durationMs: number; recordPath: string };

export type EventSink = (event: RunEvent) => void;
