// What a stage asks of the machine that runs it, and how a run's executor is configured. Neither is part of a
// stage's key: they change how and where a stage runs, not what it produces.

export interface StageResources {
  /** GPUs (Slurm: --gres=gpu:N); 0 asks for none. */
  gpus?: number;
  /** CPU cores (Slurm: -c). */
  cpus?: number;
  /** Memory: MiB, or Slurm's form ('512M', '16G') (Slurm: --mem). */
  mem?: number | string;
  /** Time limit: minutes, or Slurm's form ('90', '1:30:00', '2-00:00:00') (Slurm: -t). */
  time?: number | string;
}

/** The forms Slurm reads: memory in MiB or with a unit; a time limit in minutes or [days-]hours:minutes:seconds. */
export const MEM_FORM = /^\d+[KMGT]?$/i;
export const TIME_FORM = /^(\d+-)?\d+(:\d{1,2}){0,2}$|^\d+-\d+$/;

/** Where a setting was written, for errors found after loading. */
export interface SettingWhere {
  file: string;
  line: number;
  column: number;
  /** The file's text, for a code frame. */
  source?: string;
}

/** The `executor:` section of the config files, merged (later files win). */
export interface ExecutorSettings {
  /** 'local' or 'slurm'; --executor wins. */
  type?: string;
  /** Attempts after a failed one, for every stage whose own `retries:` says nothing. */
  retries?: number;
  partition?: string;
  account?: string;
  qos?: string;
  /** Raw sbatch flags, after facepipe's own (so they win). */
  extra?: string | string[];
  /** Where job logs go (relative to the workspace, or absolute; on the filesystem the nodes share). */
  logs?: string;
  /** The node binary on the compute nodes (default: the runner's own). */
  node?: string;
  /** Position of each key that was set (type, partition, ...). */
  where: Record<string, SettingWhere>;
}
