// The canary: before a run's first job, one short job checks from a compute node that it runs the same
// facepipe, sees this very workspace (a word the runner wrote, read back) and can write in it. The run's jobs
// are submitted at once with --dependency=afterok:<canary>, so they queue while it runs; if it fails, Slurm
// drops them (--kill-on-invalid-dep) and the run stops with what the canary saw, instead of every job failing
// without a log.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FacepipeError } from '../../../core/errors.js';
import { displayPath, writeFileAtomic } from '../../../core/fsutil.js';
import { facepipeVersion } from '../../../core/version.js';
import type { SlurmClient } from './client.js';
import type { JobPoller, PollOutcome } from './poller.js';
import { fillJobId, isCanaryReport, type CanaryFile, type CanaryReport } from './protocol.js';
import { logTail } from './report.js';
import type { SubmitOptions } from './sbatch-args.js';

/** The canary's --comment: not a stage key, so a resumed run never takes it for a stage's job. */
export const CANARY_COMMENT = 'facepipe-canary';

export interface CanaryRun {
  workspace: string;
  dir: string;
  logDir: string;
  script: string;
  /** sbatch options every job of the run shares (name, partition, account, qos, extra, chdir). */
  base: Omit<SubmitOptions, 'script' | 'output'>;
  /** The node binary the jobs run, for the hint. */
  node: string;
  aborted: () => boolean;
}

export class Canary {
  /** The canary's job id, once submitted. */
  readonly id: Promise<string>;
  /** Rejects with the reason when the canary fails; never settles otherwise. Handled: racing it is safe. */
  readonly failed: Promise<never>;
  ok = false;
  /** Why it failed, once it did. */
  reason?: FacepipeError;
  private reject!: (e: FacepipeError) => void;

  constructor(
    private readonly client: SlurmClient,
    poller: JobPoller,
    private readonly r: CanaryRun,
  ) {
    this.failed = new Promise<never>((_, reject) => (this.reject = reject));
    this.failed.catch(() => undefined);
    const submitted = this.submit();
    this.id = submitted;
    void (async () => {
      try {
        const id = await submitted;
        this.judge(id, await poller.watch(id));
      } catch {
        /* a refused submission is reported through `failed`; a closed poller means the run is over */
      }
    })();
  }

  private fail(e: FacepipeError): void {
    this.reason ??= e;
    this.reject(e);
  }

  private async submit(): Promise<string> {
    const nonce = randomBytes(12).toString('hex');
    const noncePath = join(this.r.dir, 'canary.nonce');
    writeFileAtomic(noncePath, nonce);
    const file = join(this.r.dir, 'canary.json');
    const spec: CanaryFile = {
      v: 1,
      canary: true,
      workspace: this.r.workspace,
      version: facepipeVersion(),
      nonce,
      noncePath,
      report: join(this.r.dir, 'canary.%j.json'),
    };
    writeFileAtomic(file, JSON.stringify(spec));
    try {
      return await this.client.submit({
        ...this.r.base,
        script: this.r.script,
        scriptArgs: ['--canary', file],
        output: join(this.r.logDir, 'canary.%j.log'),
        cpus: 1,
        mem: 256,
        time: 5,
        comment: CANARY_COMMENT,
      });
    } catch (e) {
      const err = this.error(`sbatch refused the canary job: ${(e as Error).message}`, []);
      this.fail(err);
      throw err;
    }
  }

  private judge(id: string, o: PollOutcome): void {
    if (this.r.aborted()) return;
    const log = join(this.r.logDir, `canary.${id}.log`);
    let report: CanaryReport | undefined;
    try {
      const v: unknown = JSON.parse(readFileSync(fillJobId(join(this.r.dir, 'canary.%j.json'), id), 'utf8'));
      if (isCanaryReport(v)) report = v;
    } catch {
      /* no report: said below */
    }
    // The canary exits 0 only when every check passed; its report may simply not be visible here yet (NFS).
    if (o.kind === 'final' && o.job.state === 'COMPLETED' && o.job.exitCode === 0) {
      this.ok = true;
      return;
    }
    const ended = o.kind === 'final' ? `ended ${o.job.rawState}${o.job.node ? ` on ${o.job.node}` : ''}` : 'was lost';
    const saw = report
      ? report.checks.filter((c) => !c.startsWith('ok')).map((c) => `    ${c}`)
      : ['    it wrote no report: the node does not see this workspace, or could not start node or facepipe'];
    const tail = logTail(log);
    const logLines = tail.length
      ? [`  log: ${displayPath(this.r.workspace, log)}; last lines:`, ...tail.map((l) => `    ${l}`)]
      : [`  log: ${displayPath(this.r.workspace, log)} is missing or empty (the node could not write it)`];
    this.fail(this.error(`the canary job ${id} ${ended}:`, [...saw, ...logLines]));
  }

  private error(first: string, lines: string[]): FacepipeError {
    return new FacepipeError(
      {
        code: 'slurm-canary',
        message: [
          `Slurm jobs cannot run facepipe on this workspace: ${first}`,
          ...lines,
          '  (the canary is a short job that checks, from a compute node, what every stage job needs)',
        ].join('\n'),
        hint:
          `the workspace (${this.r.workspace}) and facepipe's installation must be on a filesystem the compute ` +
          `nodes share, at the same paths; jobs run ${this.r.node} (set executor.node for another path on the nodes)`,
      },
      1,
    );
  }
}
