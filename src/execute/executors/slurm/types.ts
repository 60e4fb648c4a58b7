// What facepipe knows about a Slurm job, whichever tool (squeue, scontrol, sacct) said it.

/** States in which a job may still run (or run again). */
export const ACTIVE_STATES = [
  'PENDING',
  'CONFIGURING',
  'RUNNING',
  'COMPLETING',
  'SUSPENDED',
  'STOPPED',
  'SIGNALING',
  'STAGE_OUT',
  'RESIZING',
  'REQUEUED',
  'REQUEUE_FED',
  'REQUEUE_HOLD',
  'RESV_DEL_HOLD',
  'SPECIAL_EXIT',
] as const;

/** States a job never leaves (facepipe submits with --no-requeue, so PREEMPTED is final too). */
export const FINAL_STATES = [
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'OUT_OF_MEMORY',
  'NODE_FAIL',
  'PREEMPTED',
  'BOOT_FAIL',
  'DEADLINE',
  'REVOKED',
] as const;

export type ActiveState = (typeof ACTIVE_STATES)[number];
export type FinalState = (typeof FINAL_STATES)[number];
/** UNKNOWN: a state string this version of facepipe does not know (kept in `rawState`). */
export type JobState = ActiveState | FinalState | 'UNKNOWN';

export function isFinal(state: JobState): state is FinalState {
  return (FINAL_STATES as readonly string[]).includes(state);
}

export interface JobSnapshot {
  id: string;
  state: JobState;
  /** The state as the tool printed it, e.g. 'CANCELLED by 0'. */
  rawState: string;
  /** Why it is pending, or why it ended (Slurm's Reason), when Slurm gives one other than 'None'. */
  reason?: string;
  /** The node(s) it ran on, once it started. */
  node?: string;
  name?: string;
  /** The job's --comment: facepipe puts the stage key there. */
  comment?: string;
  /** Exit status of the batch script, once final; `signal` when a signal ended it. */
  exitCode?: number;
  signal?: number;
  /** The job's log (Slurm's StdOut), with %j and friends filled in where the tool allows. */
  stdout?: string;
  /** Which tool said so. */
  source: 'squeue' | 'scontrol' | 'sacct';
}

export interface PartitionInfo {
  name: string;
  isDefault: boolean;
  available: boolean;
  nodes: number;
  /** Node states in this partition, e.g. ['idle', 'mixed']. */
  states: string[];
  gres: string[];
}

export interface ClusterInfo {
  version: string;
  partitions: PartitionInfo[];
}
