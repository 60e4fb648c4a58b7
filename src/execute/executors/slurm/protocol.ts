// The files between the runner (login node) and a Slurm job (compute node): what to run, and what happened.
// Both sides read them from the shared filesystem; the reader checks their shape.
import type { JobOutcome, StageJob } from '../../../contracts/executor.js';
import { isPlainObject } from '../../../core/objects.js';

/** <stage>.<attempt>.job.json: one stage to run. `report` holds %j, the job id. */
export interface JobFile {
  v: 1;
  job: StageJob;
  report: string;
}

/** canary.json: what the canary checks from a compute node. `report` holds %j. */
export interface CanaryFile {
  v: 1;
  canary: true;
  workspace: string;
  /** facepipe's version on the login node: the nodes must run the same. */
  version: string;
  /** A random word the runner wrote to `noncePath`: reading it back proves the node sees this very folder. */
  nonce: string;
  noncePath: string;
  report: string;
}

/** What a job reports, written atomically by the job side before it exits. */
export interface JobReport {
  v: 1;
  jobId: string;
  host: string;
  /** ms since the epoch */
  started: number;
  finished: number;
  outcome: JobOutcome;
  /** A signal that stopped the stage (SIGTERM: the time limit is near, or scancel). */
  signal?: string;
}

export interface CanaryReport {
  v: 1;
  jobId: string;
  host: string;
  ok: boolean;
  /** One line per check, 'ok ...' or 'FAILED ...'. */
  checks: string[];
}

/** Slurm's %j in a path pattern, filled in. */
export const fillJobId = (pattern: string, id: string) => pattern.replace(/%j/g, id);

export function isJobFile(v: unknown): v is JobFile {
  return (
    isPlainObject(v) &&
    v.v === 1 &&
    typeof v.report === 'string' &&
    isPlainObject(v.job) &&
    typeof v.job.key === 'string' &&
    typeof v.job.workspace === 'string' &&
    isPlainObject(v.job.kind) &&
    typeof v.job.kind.runModule === 'string'
  );
}

export function isCanaryFile(v: unknown): v is CanaryFile {
  return (
    isPlainObject(v) &&
    v.v === 1 &&
    v.canary === true &&
    typeof v.workspace === 'string' &&
    typeof v.version === 'string' &&
    typeof v.nonce === 'string' &&
    typeof v.noncePath === 'string' &&
    typeof v.report === 'string'
  );
}

export function isJobReport(v: unknown): v is JobReport {
  return (
    isPlainObject(v) &&
    v.v === 1 &&
    typeof v.jobId === 'string' &&
    typeof v.host === 'string' &&
    typeof v.started === 'number' &&
    typeof v.finished === 'number' &&
    isPlainObject(v.outcome) &&
    typeof v.outcome.state === 'string'
  );
}

export function isCanaryReport(v: unknown): v is CanaryReport {
  return (
    isPlainObject(v) &&
    v.v === 1 &&
    typeof v.host === 'string' &&
    typeof v.ok === 'boolean' &&
    Array.isArray(v.checks) &&
    v.checks.every((c) => typeof c === 'string')
  );
}

/** Lines the job side prints among the stage's own, for the runner to turn back into events. */
export const MARK = '##facepipe ';
