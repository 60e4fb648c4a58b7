// Messages between the runner and a local stage worker process.
import type { StageReport } from '../../../contracts/events.js';
import type { JobOutcome, StageJob } from '../../../contracts/executor.js';

export type ToWorker = { type: 'start'; job: StageJob } | { type: 'abort' };

export type FromWorker =
  | { type: 'progress'; text: string }
  | { type: 'report'; report: StageReport }
  | { type: 'log'; line: string }
  | { type: 'metrics'; values: Record<string, number | string> }
  | { type: 'outcome'; outcome: JobOutcome; stack?: string };
