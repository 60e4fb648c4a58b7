// sbatch's command line for one facepipe job, built and checked without running anything.
import { MEM_FORM, TIME_FORM } from '../../../contracts/resources.js';
import { FacepipeError } from '../../../core/errors.js';

export interface SubmitOptions {
  /** The batch script to run (a file; Slurm copies it at submit time). */
  script: string;
  scriptArgs?: string[];
  /** --job-name: the run's tag, shared by every job of the run (squeue and scancel select by it). */
  name: string;
  /** The job's log, stdout and stderr together; Slurm fills in %j (job id) and %x (job name). */
  output: string;
  partition?: string;
  account?: string;
  qos?: string;
  /** Raw sbatch flags, passed after facepipe's own (so they win). A string is split on whitespace. */
  extra?: string | string[];
  /** --gres=gpu:N (0 or absent: no GPU). */
  gpus?: number;
  /** -c, --cpus-per-task. */
  cpus?: number;
  /** --mem: megabytes, or Slurm's form ('512M', '4G'). */
  mem?: number | string;
  /** -t, --time: minutes, or Slurm's form ('90', '1:30:00', '2-00:00:00'). */
  time?: number | string;
  /** --chdir: where the script starts (default: sbatch's own working folder). */
  chdir?: string;
  /** --signal: sent before the time limit so training can save a checkpoint; false for none. */
  signal?: string | false;
  /** --comment: facepipe puts the stage key here, so a resumed run can tell which stage a live job computes. */
  comment?: string;
  /** --dependency=afterok:<id> (with --kill-on-invalid-dep=yes, so a failed parent never leaves it pending). */
  afterOk?: string;
}

export const DEFAULT_SIGNAL = 'B:TERM@60';

function bad(message: string, hint: string): never {
  throw new FacepipeError({ code: 'slurm-option', message, hint }, 2);
}

const TIME = TIME_FORM;
const MEM = MEM_FORM;

/** Split a raw flag string; quotes are refused rather than half-understood. */
export function splitExtra(extra: string | string[] | undefined): string[] {
  if (extra === undefined) return [];
  if (Array.isArray(extra)) return extra;
  if (/["']/.test(extra))
    bad(`extra sbatch flags ${JSON.stringify(extra)} contain quotes`, 'give `extra` as a list, one flag per item');
  return extra.split(/\s+/).filter(Boolean);
}

/** squeue and scancel read --name as a comma-separated list, so a tag with a comma would select other jobs. */
export function checkJobName(name: string): void {
  if (!/^[\w.+-]+$/.test(name))
    bad(
      `Slurm job name ${JSON.stringify(name)} is empty or holds characters other than letters, digits, . _ + -`,
      'use a tag like fp-<run id>',
    );
}

/** The arguments after `sbatch`, ending with the script and its arguments. */
export function sbatchArgs(o: SubmitOptions): string[] {
  checkJobName(o.name);
  const args = ['--parsable', `--job-name=${o.name}`, `--output=${o.output}`, '--no-requeue'];
  if (o.signal !== false) args.push(`--signal=${o.signal ?? DEFAULT_SIGNAL}`);
  if (o.partition) args.push(`--partition=${o.partition}`);
  if (o.account) args.push(`--account=${o.account}`);
  if (o.qos) args.push(`--qos=${o.qos}`);
  if (o.gpus !== undefined) {
    if (!Number.isInteger(o.gpus) || o.gpus < 0) bad(`gpus must be a whole number >= 0, got ${o.gpus}`, 'e.g. gpus: 1');
    if (o.gpus > 0) args.push(`--gres=gpu:${o.gpus}`);
  }
  if (o.cpus !== undefined) {
    if (!Number.isInteger(o.cpus) || o.cpus < 1) bad(`cpus must be a whole number >= 1, got ${o.cpus}`, 'e.g. cpus: 4');
    args.push(`--cpus-per-task=${o.cpus}`);
  }
  if (o.mem !== undefined) {
    const mem = String(o.mem);
    if (!MEM.test(mem))
      bad(`mem ${JSON.stringify(o.mem)} is not a Slurm memory size`, "megabytes, or e.g. '512M', '16G'");
    args.push(`--mem=${mem}`);
  }
  if (o.time !== undefined) {
    const time = String(o.time);
    if (!TIME.test(time) || time === '0')
      bad(`time ${JSON.stringify(o.time)} is not a Slurm time limit`, "minutes, or e.g. '1:30:00', '2-00:00:00'");
    args.push(`--time=${time}`);
  }
  if (o.chdir) args.push(`--chdir=${o.chdir}`);
  if (o.comment !== undefined) {
    if (!/^[\w.:+-]+$/.test(o.comment))
      bad(`job comment ${JSON.stringify(o.comment)} is not a plain word`, 'a stage key');
    args.push(`--comment=${o.comment}`);
  }
  if (o.afterOk !== undefined) {
    if (!/^\d+$/.test(o.afterOk)) bad(`dependency ${JSON.stringify(o.afterOk)} is not a job id`, 'a job id');
    args.push(`--dependency=afterok:${o.afterOk}`, '--kill-on-invalid-dep=yes');
  }
  args.push(...splitExtra(o.extra), o.script, ...(o.scriptArgs ?? []));
  return args;
}
