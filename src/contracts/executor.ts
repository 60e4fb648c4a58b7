// The seam between the runner and where a stage's work happens (a local process, a Slurm job). The runner
// hands an executor a job; the job side runs the stage, ingests its outputs into the store and commits the
// stage record last, the same way on every executor; the executor reports the outcome.
import type { StageReport } from './events.js';
import type { OutputSpec } from './stage-kind.js';
import type { KeyMaterial, StageRecord } from './records.js';

export interface StageJob {
  runId: string;
  /** The stage's id in this run: 'triarchy', or 'experiment/triarchy' when several experiments run. */
  id: string;
  stage: string;
  key: string;
  material: KeyMaterial;
  kind: { name: string; version: string; runModule: string };
  params: Record<string, unknown>;
  /** Absolute paths of the inputs, by input name. */
  inputs: Record<string, string>;
  outputs: OutputSpec[];
  /** Workspace root (absolute); the store lives under it. */
  workspace: string;
  /** TensorFlow.js backend preference: 'auto', 'tensorflow', 'wasm', 'cpu', ... */
  backend: string;
  /** CPU cores this stage may use (shared fairly when several stages run at once). */
  cores: number;
}

/** What a job reports while it runs. */
export interface JobEvents {
  progress(text: string): void;
  /** Structured progress (ctx.report): steps, validation results. */
  report(r: StageReport): void;
  log(line: string): void;
  metrics(values: Record<string, number | string>): void;
}

export type JobOutcome =
  | { state: 'done'; record: StageRecord }
  | { state: 'failed'; error: string; /** For FACEPIPE_DEBUG. */ stack?: string }
  | { state: 'interrupted' };

export interface Executor {
  readonly name: string;
  /** Run one job to its end. Aborting `signal` cancels it; the outcome is then 'interrupted'. */
  run(job: StageJob, events: JobEvents, signal: AbortSignal): Promise<JobOutcome>;
  /** Release what the executor holds (pollers, connections) at the end of a run. */
  close?(): Promise<void>;
}
