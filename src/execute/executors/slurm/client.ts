// A small typed client over Slurm's own commands (sbatch, squeue, scontrol, scancel, sacct, sinfo). Slurm does
// the scheduling; this only asks and tells. Every method is one command (finalState: at most two).
import { userInfo } from 'node:os';
import { FacepipeError } from '../../../core/errors.js';
import { execSlurm, SlurmCommandError, type SlurmExec } from './exec.js';
import {
  accountingDisabled,
  parseSacct,
  parseSbatchParsable,
  parseScontrolJob,
  parseSinfo,
  parseSqueue,
  SACCT_FIELDS,
  SINFO_FORMAT,
  SQUEUE_FORMAT,
} from './parse.js';
import { checkJobName, sbatchArgs, type SubmitOptions } from './sbatch-args.js';
import type { ClusterInfo, JobSnapshot } from './types.js';

export interface SlurmClientOptions {
  exec?: SlurmExec;
  /** Per command; slurmctld under load can take seconds to answer. */
  timeoutMs?: number;
  /** Whose jobs squeue and scancel look at (default: this process's user). */
  user?: string;
  /** Environment for the commands (default: this process's; SLURM_CONF passes through). */
  env?: NodeJS.ProcessEnv;
}

export type Reachability = { ok: true; info: ClusterInfo } | { ok: false; error: string; hint: string };

export class SlurmClient {
  private readonly exec: SlurmExec;
  private readonly timeoutMs: number;
  private readonly user: string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(options: SlurmClientOptions = {}) {
    this.exec = options.exec ?? execSlurm;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.user = options.user ?? userInfo().username;
    this.env = options.env ?? process.env;
  }

  private run(file: string, args: string[], env?: NodeJS.ProcessEnv) {
    return this.exec(file, args, { timeoutMs: this.timeoutMs, env: env ?? this.env });
  }

  /**
   * Submit one batch job; returns its id. `env` is added to sbatch's environment, which Slurm hands to the job
   * (sbatch's default --export=ALL), so the job sees it without quoting games.
   */
  async submit(options: SubmitOptions, env: Record<string, string> = {}): Promise<string> {
    const { stdout } = await this.run('sbatch', sbatchArgs(options), { ...this.env, ...env });
    return parseSbatchParsable(stdout);
  }

  /** Cancel every job of a run: one scancel for the whole tag. */
  async cancelByName(name: string): Promise<void> {
    checkJobName(name);
    await this.run('scancel', [`--name=${name}`, `--user=${this.user}`]);
  }

  async cancel(ids: string[]): Promise<void> {
    if (ids.length) await this.run('scancel', ids);
  }

  /**
   * Every job of a run that slurmctld still holds, finished ones included (--states=all keeps them for
   * MinJobAge, 300 s by default), in ONE squeue call. Keyed by job id. Several tags (a run and the runs it
   * adopted jobs from) still take one call: squeue reads --name as a list.
   */
  async queue(name: string | string[]): Promise<Map<string, JobSnapshot>> {
    const names = typeof name === 'string' ? [name] : name;
    if (!names.length) return new Map();
    names.forEach(checkJobName);
    const args = [
      '--noheader',
      '--states=all',
      `--name=${names.join(',')}`,
      `--user=${this.user}`,
      `--Format=${SQUEUE_FORMAT}`,
    ];
    const { stdout } = await this.run('squeue', args);
    return new Map(parseSqueue(stdout).map((j) => [j.id, j]));
  }

  /** scontrol's view of one job; undefined once slurmctld has forgotten it. */
  async showJob(id: string): Promise<JobSnapshot | undefined> {
    try {
      const { stdout } = await this.run('scontrol', ['show', 'job', id]);
      return parseScontrolJob(stdout);
    } catch (e) {
      if (e instanceof SlurmCommandError && /invalid job id/i.test(e.stderr + e.stdout)) return undefined;
      throw e;
    }
  }

  /**
   * The accounting database's view, the last resort. 'disabled' when the cluster has none, which is common and
   * fine: facepipe never needs sacct. Jobs it does not list (yet: it lags) are simply absent.
   */
  async accounting(ids: string[]): Promise<Map<string, JobSnapshot> | 'disabled'> {
    if (!ids.length) return new Map();
    const args = ['--noheader', '--parsable2', '--allocations', `--jobs=${ids.join(',')}`, `--format=${SACCT_FIELDS}`];
    try {
      const { stdout, stderr } = await this.run('sacct', args);
      if (accountingDisabled(stdout + stderr)) return 'disabled';
      return new Map(parseSacct(stdout).map((j) => [j.id, j]));
    } catch (e) {
      if (e instanceof SlurmCommandError && accountingDisabled(e.stdout + e.stderr)) return 'disabled';
      throw e;
    }
  }

  /** For a job gone from squeue: scontrol first, then sacct; undefined when neither knows it. */
  async finalState(id: string): Promise<JobSnapshot | undefined> {
    const shown = await this.showJob(id);
    if (shown) return shown;
    const acct = await this.accounting([id]);
    return acct === 'disabled' ? undefined : acct.get(id);
  }

  /** Partitions, node states and the Slurm version (two sinfo calls). */
  async info(): Promise<ClusterInfo> {
    const [table, version] = await Promise.all([
      this.run('sinfo', ['--noheader', `--format=${SINFO_FORMAT}`]),
      this.run('sinfo', ['--version']),
    ]);
    return parseSinfo(table.stdout, version.stdout);
  }

  /** For `facepipe doctor`: can we talk to slurmctld at all? Never throws. */
  async reachable(): Promise<Reachability> {
    try {
      return { ok: true, info: await this.info() };
    } catch (e) {
      const error = e instanceof FacepipeError ? e.message : String(e);
      const hint =
        e instanceof FacepipeError && e.diagnostics[0]?.hint
          ? e.diagnostics[0].hint
          : 'is slurmctld running, and does SLURM_CONF (or /etc/slurm/slurm.conf) point at it? ' +
            'On one machine: sudo scripts/dev-cluster.sh start';
      return { ok: false, error, hint };
    }
  }
}
