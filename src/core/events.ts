// The one progress event type. The runner emits these; every renderer (listr2, plain lines, JSON lines)
// and the run record consume them, so what the user sees and what is recorded cannot disagree.

export type StageState = 'waiting' | 'cached' | 'running' | 'done' | 'failed' | 'skipped' | 'interrupted';

export type RunEvent =
  | { type: 'run-start'; runId: string; pipeline: string; experiment: string; stages: string[]; jobs: number }
  | { type: 'plan'; stage: string; willRun: boolean; reason: string }
  | { type: 'lock-wait'; holder: string }
  | { type: 'stage-state'; stage: string; state: StageState; reason?: string; durationMs?: number; error?: string }
  | { type: 'stage-progress'; stage: string; text: string }
  | { type: 'stage-log'; stage: string; line: string }
  | { type: 'backend'; stage: string; backend: string }
  | { type: 'run-end'; runId: string; status: 'ok' | 'failed' | 'interrupted'; durationMs: number; recordPath: string };

export type EventSink = (event: RunEvent) => void;
