// The seam between the runner and where a stage's work happens (a local process, a Slurm job). The runner
// hands an executor a job; the job side runs the stage, ingests its outputs into the store and commits the
// stage record last, the same way on every executor; the executor reports the outcome.
import type { StageReport } from './events.js';
import type { OutputSpec } from './stage-kind.js';
import type { EpochStateRecord, KeyMaterial, StageRecord } from './records.js';
import type { ExecutorSettings, StageResources } from './resources.js';

export type { ExecutorSettings, StageResources };

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
  /** What the stage asks of its machine (its kind's defaults, then the pipeline's and the config's). */
  resources: StageResources;
  /** 1 for the first try, 2 for the first retry, ... */
  attempt: number;
  /**
   * Epoch-prefix reuse (kinds with epochPrefix): the prefix key the state at this run's last epoch is stored under,
   * and the cached state to start from when the scratch folder holds nothing of its own.
   */
  epochState?: { prefix: string; param: string; epoch: number; from?: EpochStateRecord };
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
  | {
      state: 'failed';
      error: string;
      /** For FACEPIPE_DEBUG. */
      stack?: string;
      /** False when another attempt would be wrong (the job was cancelled by someone). */
      retryable?: boolean;
    }
  | { state: 'interrupted' };

export interface Executor {
  readonly name: string;
  /**
   * How many stages the runner hands over at once, and within what memory, when the user said nothing: a
   * cluster queues and places jobs itself. Absent: one at a time within 75% of this machine's memory.
   */
  readonly admission?: { jobs: number; memoryBudgetMB: number };
  /** Run one job to its end. Aborting `signal` cancels it; the outcome is then 'interrupted'. */
  run(job: StageJob, events: JobEvents, signal: AbortSignal): Promise<JobOutcome>;
  /** Release what the executor holds (pollers, connections) at the end of a run. */
  close?(): Promise<void>;
}

/** What an executor is built with. */
export interface ExecutorContext {
  /** Workspace root (absolute). */
  workspace: string;
  /** The configs' `executor:` section. */
  settings: ExecutorSettings;
  /** A note for the user (e.g. jobs of an interrupted run that were adopted, or left alone). */
  warn: (message: string) => void;
}
