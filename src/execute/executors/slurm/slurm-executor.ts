// The Slurm executor: each stage the runner hands over becomes one batch job running facepipe's own job side
// (entry.ts -> src/execute/job.ts), which commits the stage's record in the shared store. The runner stays on
// the login node; Slurm schedules. Per run: one tag (--job-name=fp-<run>), one poller (one squeue call per
// round for every job), one canary before the first job, a ledger of what was submitted (ledger.ts).
//   - A job is done when its record is in the store (its own report says so first; else Slurm's end state and
//     the record). Otherwise its end is reported with Slurm's state, the log's path and the log's tail.
//   - Jobs of an interrupted run of this workspace that are still alive are adopted, not submitted again.
//   - Aborting the run (Ctrl-C) cancels every job of the run (scancel by tag) and waits until Slurm says so.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Executor, ExecutorContext, JobEvents, JobOutcome, StageJob } from '../../../contracts/executor.js';
import { FacepipeError } from '../../../core/errors.js';
import { displayPath, writeFileAtomic } from '../../../core/fsutil.js';
import { Workspace } from '../../workspace.js';
import { findAdoptable, type Adoptable } from './adopt.js';
import { Canary } from './canary.js';
import { SlurmClient } from './client.js';
import { SlurmCommandError } from './exec.js';
import { appendLedger, closeRun, outstanding, readLedger, runDir, safeId, tagOf } from './ledger.js';
import { LogFollower } from './log-follow.js';
import { JobPoller, type PollOutcome } from './poller.js';
import { fillJobId, type JobFile, type JobReport } from './protocol.js';
import { describeEnd, readReport } from './report.js';
import { splitExtra, type SubmitOptions } from './sbatch-args.js';
import type { JobSnapshot } from './types.js';

const ENTRY = fileURLToPath(new URL('./entry.js', import.meta.url));

/** After Ctrl-C, how long to wait for Slurm to confirm each job's end before leaving it to the next run. */
const CANCEL_WAIT_MS = 60_000;
/** How long a job that committed on its node may take to show its record here (shared filesystem latency). */
const LATENCY_WAIT_MS = 60_000;
/** How often the logs (and the jobs' own reports) of running jobs are read: no Slurm call. */
const FOLLOW_MS = 1000;

interface RunFiles {
  runId: string;
  tag: string;
  dir: string;
  logDir: string;
  script: string;
}

/** A job this executor follows to its end. */
interface Active {
  id: string;
  tag: string;
  job: StageJob;
  events: JobEvents;
  log: LogFollower;
  report: string;
  submittedAt: number;
  /** The run folder whose ledger notes its end (an adopted job's is its own run's). */
  ledgerDir: string;
  seen?: JobReport;
  /** Resolved when the job's report says done and its record is in the store, before Slurm has noticed. */
  committed: Promise<void>;
  commit: () => void;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** At most `n` sbatch calls at once: a sweep's fan-out goes out as a burst without forking dozens at a time. */
class Slots {
  private busy = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly n: number) {}
  async take(): Promise<() => void> {
    if (this.busy >= this.n) await new Promise<void>((r) => this.waiting.push(r));
    this.busy++;
    return () => {
      this.busy--;
      this.waiting.shift()?.();
    };
  }
}

export class SlurmExecutor implements Executor {
  readonly name = 'slurm';
  readonly admission = { jobs: 1000, memoryBudgetMB: Number.POSITIVE_INFINITY };
  private readonly ws: Workspace;
  private readonly node: string;
  private files?: RunFiles;
  private prepared?: Promise<RunFiles>;
  private poller?: JobPoller;
  private adoptable = new Map<string, Adoptable>();
  private adoptedRuns = new Map<string, string>();
  private unneeded: Adoptable[] = [];
  private readonly active = new Map<string, Active>();
  private readonly slots = new Slots(4);
  private canary?: Canary;
  private follow?: NodeJS.Timeout;
  private cancelling?: Promise<void>;
  private aborted = false;
  private closed = false;
  private pollWarned = false;
  /** Resolves CANCEL_WAIT_MS after the run was aborted: jobs not confirmed ended by then are left to the next run. */
  private giveUp: Promise<'gave-up'> = new Promise(() => {});
  private giveUpTimer?: NodeJS.Timeout;

  constructor(
    private readonly ctx: ExecutorContext,
    private readonly client = new SlurmClient(),
  ) {
    this.ws = new Workspace(ctx.workspace, { statCache: false });
    this.node = ctx.settings.node ?? process.execPath;
    try {
      splitExtra(ctx.settings.extra);
    } catch (e) {
      const where = ctx.settings.where.extra;
      throw new FacepipeError({
        code: 'bad-value',
        message: (e as Error).message,
        keyPath: 'executor.extra',
        ...where,
      });
    }
  }

  async run(job: StageJob, events: JobEvents, signal: AbortSignal): Promise<JobOutcome> {
    if (this.closed) return { state: 'interrupted' };
    const files = await this.prepare(job.runId, signal);
    if (signal.aborted || this.closed) return { state: 'interrupted' };
    const adopted = this.adoptable.get(job.key);
    let sub: Pick<Active, 'id' | 'tag' | 'report' | 'submittedAt' | 'ledgerDir'> & { log: string };
    if (adopted) {
      this.adoptable.delete(job.key);
      sub = { ...adopted, ledgerDir: runDir(this.ws.root, adopted.runId) };
      events.log(
        `# slurm: adopted job ${adopted.id} (${adopted.state}${adopted.node ? ` on ${adopted.node}` : ''}) of the interrupted run ${adopted.runId}; log ${displayPath(this.ws.root, adopted.log)}`,
      );
    } else {
      const submitted = await this.submit(files, job, events, signal);
      if ('state' in submitted) return submitted;
      sub = submitted;
    }
    return this.followToEnd({ ...sub, job, events }, signal);
  }

  /** Once per run: its folder and batch script, the poller, and the live jobs of interrupted runs. */
  private prepare(runId: string, signal: AbortSignal): Promise<RunFiles> {
    this.prepared ??= (async () => {
      const dir = runDir(this.ws.root, runId);
      const logs = this.ctx.settings.logs;
      const logDir = logs ? join(isAbsolute(logs) ? logs : resolve(this.ws.root, logs), runId) : dir;
      mkdirSync(dir, { recursive: true });
      mkdirSync(logDir, { recursive: true });
      const script = join(dir, 'job.sh');
      writeFileSync(
        script,
        `#!/bin/bash\n# facepipe run ${runId}: each job runs one stage (its job file is $1) with facepipe's job side.\n` +
          `exec ${quote(this.node)} ${quote(ENTRY)} "$@"\n`,
      );
      chmodSync(script, 0o755);
      const tag = tagOf(runId);
      this.poller = new JobPoller(this.client, {
        name: tag,
        onChange: (j) => this.changed(j),
        onPollError: (e) => {
          if (!this.pollWarned) this.ctx.warn(`squeue failed (polling goes on): ${(e as Error).message}`);
          this.pollWarned = true;
        },
      });
      this.giveUp = new Promise((r) => {
        const onAbort = () => {
          void this.cancelAll();
          this.giveUpTimer = setTimeout(() => r('gave-up'), CANCEL_WAIT_MS);
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      });
      const found = await findAdoptable(this.client, this.ws.root, runId, this.ctx.warn);
      this.adoptable = found.byKey;
      this.unneeded = found.extra;
      for (const a of [...found.byKey.values(), ...found.extra]) this.adoptedRuns.set(a.tag, a.runId);
      for (const t of found.tags) this.poller.addName(t);
      this.files = { runId, tag, dir, logDir, script };
      return this.files;
    })();
    return this.prepared;
  }

  private baseOptions(files: RunFiles): Omit<SubmitOptions, 'script' | 'output'> {
    const s = this.ctx.settings;
    return {
      name: files.tag,
      partition: s.partition,
      account: s.account,
      qos: s.qos,
      extra: s.extra,
      chdir: this.ws.root,
    };
  }

  /** The canary's job id while its verdict is out (jobs then wait for it), undefined once it passed. */
  private async canaryGate(files: RunFiles): Promise<string | undefined> {
    if (this.canary?.ok) return undefined;
    if (this.canary?.reason) throw this.canary.reason;
    this.canary ??= new Canary(this.client, this.poller!, {
      workspace: this.ws.root,
      dir: files.dir,
      logDir: files.logDir,
      script: files.script,
      base: this.baseOptions(files),
      node: this.node,
      aborted: () => this.aborted,
    });
    const id = await this.canary.id;
    return this.canary.ok ? undefined : id;
  }

  private async submit(
    files: RunFiles,
    job: StageJob,
    events: JobEvents,
    signal: AbortSignal,
  ): Promise<(Pick<Active, 'id' | 'tag' | 'report' | 'submittedAt' | 'ledgerDir'> & { log: string }) | JobOutcome> {
    const release = await this.slots.take();
    try {
      if (signal.aborted) return { state: 'interrupted' };
      const afterOk = await this.canaryGate(files);
      if (signal.aborted || this.closed) return { state: 'interrupted' };
      const safe = safeId(job.id);
      const jobFile = join(files.dir, `${safe}.${job.attempt}.job.json`);
      const reportPattern = join(files.dir, `${safe}.%j.report.json`);
      writeFileAtomic(jobFile, JSON.stringify({ v: 1, job, report: reportPattern } satisfies JobFile));
      const logPattern = join(files.logDir, `${safe}.%j.log`);
      const r = job.resources;
      let id: string;
      try {
        id = await this.client.submit({
          ...this.baseOptions(files),
          script: files.script,
          scriptArgs: [jobFile],
          output: logPattern,
          gpus: r.gpus,
          cpus: r.cpus,
          mem: r.mem,
          time: r.time,
          comment: job.key,
          afterOk,
        });
      } catch (e) {
        if (!(e instanceof SlurmCommandError)) throw e;
        return { state: 'failed', error: `sbatch refused the job: ${e.message}`, retryable: false };
      }
      const sub = {
        id,
        tag: files.tag,
        log: fillJobId(logPattern, id),
        report: fillJobId(reportPattern, id),
        submittedAt: Date.now(),
        ledgerDir: files.dir,
      };
      appendLedger(files.dir, {
        event: 'submitted',
        id,
        tag: files.tag,
        key: job.key,
        stage: job.id,
        attempt: job.attempt,
        log: sub.log,
        report: sub.report,
        at: sub.submittedAt,
      });
      events.log(
        `# slurm: submitted job ${id}${afterOk ? ` (starts after the canary job ${afterOk})` : ''}; log ${displayPath(this.ws.root, sub.log)}`,
      );
      if (signal.aborted) await this.client.cancel([id]).catch(() => undefined);
      return sub;
    } finally {
      release();
    }
  }

  private async followToEnd(
    sub: Pick<Active, 'id' | 'tag' | 'report' | 'submittedAt' | 'ledgerDir' | 'job' | 'events'> & { log: string },
    signal: AbortSignal,
  ): Promise<JobOutcome> {
    let commit!: () => void;
    const committed = new Promise<void>((r) => (commit = r));
    const a: Active = { ...sub, log: new LogFollower(sub.log, sub.events), committed, commit };
    this.active.set(a.id, a);
    this.follow ??= setInterval(() => this.followLogs(), FOLLOW_MS);
    try {
      const ends: Array<Promise<PollOutcome | 'committed' | 'gave-up'>> = [
        this.poller!.watch(a.id),
        committed.then(() => 'committed' as const),
        this.giveUp,
      ];
      if (this.canary && !this.canary.ok) ends.push(this.canary.failed);
      const end = await Promise.race(ends);
      a.log.read(true);
      // Slurm drops the jobs queued behind a failed canary, maybe in the very round that shows the canary
      // failed: the run stops with the canary's verdict, not with one "cancelled" per stage.
      if (typeof end === 'object' && end.kind === 'final' && end.job.reason === 'DependencyNeverSatisfied')
        await this.canaryVerdict();
      if (end === 'gave-up') {
        a.events.log(`# slurm: job ${a.id} was not confirmed ended ${CANCEL_WAIT_MS / 1000} s after scancel`);
        return { state: 'interrupted' };
      }
      return await this.outcome(a, end, signal);
    } finally {
      this.poller?.unwatch(a.id);
      this.active.delete(a.id);
      if (!this.active.size) {
        clearInterval(this.follow);
        this.follow = undefined;
      }
    }
  }

  /** Throws the canary's failure once it is known (waiting at most 30 s for it); returns if none comes. */
  private async canaryVerdict(): Promise<void> {
    if (!this.canary || this.canary.ok) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([this.canary.failed, new Promise((r) => (timer = setTimeout(r, 30_000)))]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async outcome(a: Active, end: PollOutcome | 'committed', signal: AbortSignal): Promise<JobOutcome> {
    const job = end === 'committed' ? undefined : end.kind === 'final' ? end.job : undefined;
    // The job side exits 0 only after committing: a COMPLETED job whose record is not visible yet is the shared
    // filesystem's latency (NFS attribute caches), not a failure.
    const committedThere = end === 'committed' || (job?.state === 'COMPLETED' && job.exitCode === 0);
    let report = a.seen ?? readReport(a.report);
    let record = this.ws.store.readRecord(a.job.key);
    for (let waited = 0; committedThere && !record && waited < LATENCY_WAIT_MS && !signal.aborted; waited += 500) {
      await new Promise((r) => setTimeout(r, 500));
      record = this.ws.store.readRecord(a.job.key);
      report ??= readReport(a.report);
    }
    appendLedger(a.ledgerDir, {
      event: 'ended',
      id: a.id,
      state: end === 'committed' ? 'DONE' : end.kind === 'final' ? end.job.state : 'LOST',
      node: job?.node ?? this.poller?.last(a.id)?.node,
      at: Date.now(),
      started: report?.started,
      finished: report?.finished,
    });
    // The record is the commit point. Without the job's report (killed right after committing), a record newer
    // than the submission (5 min of clock skew allowed) is this job's.
    const done = report
      ? report.outcome.state === 'done'
      : committedThere || (!!record && Date.parse(record.completedAt) >= a.submittedAt - 300_000);
    if (done && record) return { state: 'done', record };
    if (signal.aborted) return { state: 'interrupted' };
    const { error, retryable } = describeEnd({
      id: a.id,
      job,
      lostForMs: end !== 'committed' && end.kind === 'lost' ? end.missingForMs : undefined,
      report,
      log: a.log.path,
      workspace: this.ws.root,
      key: a.job.key,
      resources: a.job.resources,
    });
    return { state: 'failed', error, retryable };
  }

  /** Read the running jobs' logs; a job's own report of its end is news worth a poll (or, if done, the end). */
  private followLogs(): void {
    for (const a of this.active.values()) {
      a.log.read();
      if (a.seen) continue;
      a.seen = readReport(a.report);
      if (!a.seen) continue;
      if (a.seen.outcome.state === 'done' && this.ws.store.readRecord(a.job.key)) a.commit();
      else this.poller?.wake();
    }
  }

  private changed(j: JobSnapshot): void {
    const a = this.active.get(j.id);
    if (!a) return;
    if (j.state === 'PENDING') a.events.progress(`queued as Slurm job ${j.id}${j.reason ? ` (${j.reason})` : ''}`);
    else if (j.state === 'RUNNING') {
      a.events.progress(`running on ${j.node ?? '?'} (Slurm job ${j.id})`);
      a.events.log(`# slurm: job ${j.id} running on ${j.node ?? '?'}`);
    }
  }

  /** scancel by the run's tag, and the adopted (or adoptable) jobs by id; then poll soon to see them end. */
  private cancelAll(): Promise<void> {
    this.aborted = true;
    this.cancelling ??= (async () => {
      const adopted = [
        ...[...this.active.values()].filter((a) => a.tag !== this.files?.tag).map((a) => a.id),
        ...[...this.adoptable.values()].map((a) => a.id),
      ];
      this.adoptable.clear();
      const results = await Promise.allSettled([
        this.files ? this.client.cancelByName(this.files.tag) : undefined,
        this.client.cancel(adopted),
      ]);
      for (const r of results)
        if (r.status === 'rejected') this.ctx.warn(`scancel failed: ${(r.reason as Error).message}`);
      this.poller?.wake();
    })();
    return this.cancelling;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.follow);
    clearTimeout(this.giveUpTimer);
    // Jobs queued behind a failed canary go (Slurm drops them too). Jobs still alive after another error (squeue
    // failing for minutes) are left for the next run to adopt, as after a killed runner.
    if (this.canary?.reason) await this.cancelAll();
    else if (this.active.size && this.files)
      this.ctx.warn(
        `${this.active.size} job(s) of this run are still queued or running; the next facepipe run adopts them ` +
          `(scancel --name=${this.files.tag} stops them)`,
      );
    this.poller?.close();
    const left = [...this.adoptable.values(), ...this.unneeded];
    if (left.length)
      this.ctx.warn(
        `${left.length} job(s) of interrupted runs are still alive for stages this run did not need ` +
          `(${left.map((a) => `${a.id} of ${a.tag}`).join(', ')}); left alone: scancel ${left.map((a) => a.id).join(' ')} stops them`,
      );
    if (!this.files) return;
    const warn = () => {};
    if (!this.active.size && outstanding(readLedger(this.files.dir, this.files.runId, warn)).size === 0)
      closeRun(this.files.dir);
    // An interrupted run whose live jobs were all adopted and followed to their end has nothing alive left.
    for (const [tag, runId] of this.adoptedRuns)
      if (!left.some((a) => a.tag === tag) && ![...this.active.values()].some((a) => a.tag === tag))
        closeRun(runDir(this.ws.root, runId));
  }
}
