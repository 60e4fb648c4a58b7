// Completion polling for every job of a run: ONE squeue call per round whatever the number of jobs, backing off
// while nothing changes. A job missing from squeue is not failed: it is asked after once (scontrol, then sacct)
// and then left alone for a grace period; only after that is it reported LOST, and the caller decides (a job
// whose record is in the store is done whatever Slurm forgot).
import { FacepipeError } from '../../../core/errors.js';
import type { SlurmClient } from './client.js';
import { isFinal, type FinalState, type JobSnapshot } from './types.js';

export type PollOutcome =
  | { kind: 'final'; job: JobSnapshot & { state: FinalState } }
  | { kind: 'lost'; id: string; last?: JobSnapshot; missingForMs: number };

export interface PollerOptions {
  /** The run's tag (the jobs' --job-name). */
  name: string;
  /** First interval, and the one used again after any change or new job. */
  minIntervalMs?: number;
  maxIntervalMs?: number;
  /** Interval growth per round without change. */
  backoff?: number;
  /** How long a job may be missing from squeue, scontrol and sacct before it is reported lost. */
  missingGraceMs?: number;
  /** How long squeue may keep failing (slurmctld down or restarting) before every watch fails. */
  unreachableMs?: number;
  /** Each change of a job's state, reason or node (PENDING -> RUNNING, ...), final ones included. */
  onChange?: (job: JobSnapshot) => void;
  /** A failed squeue, or a failed look-up of a missing job; polling carries on. */
  onPollError?: (error: unknown) => void;
  /** No timer: the caller drives the rounds with poll() (tests, or a caller with its own loop). */
  manual?: boolean;
  now?: () => number;
}

interface Watch {
  id: string;
  last?: JobSnapshot;
  missingSince?: number;
  resolve: (o: PollOutcome) => void;
  reject: (e: unknown) => void;
  promise: Promise<PollOutcome>;
}

export class JobPoller {
  private readonly o: Required<Omit<PollerOptions, 'onChange' | 'onPollError'>> &
    Pick<PollerOptions, 'onChange' | 'onPollError'>;
  private readonly watches = new Map<string, Watch>();
  private readonly names: string[];
  private interval: number;
  private timer?: NodeJS.Timeout;
  private timerDue = 0;
  private polling = false;
  private poked = false;
  private failingSince?: number;
  private closed = false;
  /** Rounds done and squeue calls made, for figures and tests. */
  readonly stats = { rounds: 0, squeueCalls: 0, lookups: 0 };

  constructor(
    private readonly client: SlurmClient,
    options: PollerOptions,
  ) {
    this.o = {
      minIntervalMs: 500,
      maxIntervalMs: 20_000,
      backoff: 1.5,
      missingGraceMs: 60_000,
      unreachableMs: 120_000,
      manual: false,
      now: Date.now,
      ...options,
    };
    this.interval = this.o.minIntervalMs;
    this.names = [options.name];
  }

  /** Also poll the jobs of another tag (a run whose jobs were adopted), in the same one squeue call. */
  addName(name: string): void {
    if (!this.names.includes(name)) this.names.push(name);
  }

  /** Resolves when the job reaches a final state, or is lost. Polling speeds up: a new job is news. */
  watch(id: string): Promise<PollOutcome> {
    if (this.closed)
      throw new FacepipeError({ code: 'slurm-poller-closed', message: `poller closed; cannot watch job ${id}` }, 1);
    const existing = this.watches.get(id);
    if (existing) return existing.promise;
    let resolve!: (o: PollOutcome) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<PollOutcome>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.watches.set(id, { id, resolve, reject, promise });
    this.poked = true;
    this.schedule(this.o.minIntervalMs);
    return promise;
  }

  /** Poll soon, at the shortest interval: something happened (a cancel, a job's own report of its end). */
  wake(): void {
    this.interval = this.o.minIntervalMs;
    this.poked = true;
    this.schedule(this.o.minIntervalMs);
  }

  /** Stop watching a job (its promise never settles). */
  unwatch(id: string): void {
    this.watches.delete(id);
  }

  get watching(): string[] {
    return [...this.watches.keys()];
  }

  /** The wait before the next round, as the backoff stands. */
  get nextIntervalMs(): number {
    return this.interval;
  }

  /** The last snapshot of a watched job. */
  last(id: string): JobSnapshot | undefined {
    return this.watches.get(id)?.last;
  }

  /** Stop polling. Watches still open are rejected; a caller that no longer awaits them gets no unhandled rejection. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const w of this.watches.values()) {
      w.promise.catch(() => undefined);
      w.reject(new FacepipeError({ code: 'slurm-poller-closed', message: `stopped watching Slurm job ${w.id}` }, 1));
    }
    this.watches.clear();
  }

  /** One round: one squeue call for all watched jobs, then the rare look-ups of missing ones. Never throws. */
  async poll(): Promise<void> {
    if (!this.watches.size) return;
    this.stats.rounds++;
    let rows: Map<string, JobSnapshot>;
    try {
      this.stats.squeueCalls++;
      rows = await this.client.queue(this.names);
    } catch (e) {
      this.squeueFailed(e);
      this.interval = Math.min(this.o.maxIntervalMs, this.interval * this.o.backoff);
      return;
    }
    this.failingSince = undefined;
    let changed = false;
    const missing: Watch[] = [];
    for (const w of [...this.watches.values()]) {
      const row = rows.get(w.id);
      if (!row) {
        missing.push(w);
        continue;
      }
      w.missingSince = undefined;
      changed = this.see(w, row) || changed;
    }
    for (const w of missing) changed = (await this.chase(w)) || changed;
    this.interval = changed ? this.o.minIntervalMs : Math.min(this.o.maxIntervalMs, this.interval * this.o.backoff);
  }

  /** Record what Slurm says of a job; settle it when final. True when anything changed. */
  private see(w: Watch, job: JobSnapshot): boolean {
    const prev = w.last;
    w.last = job;
    const changed = !prev || prev.state !== job.state || prev.reason !== job.reason || prev.node !== job.node;
    if (changed) this.o.onChange?.(job);
    if (isFinal(job.state)) {
      this.watches.delete(w.id);
      w.resolve({ kind: 'final', job: job as JobSnapshot & { state: FinalState } });
    }
    return changed;
  }

  /** A job squeue did not list: ask once when first missed, and once more when the grace period is over. */
  private async chase(w: Watch): Promise<boolean> {
    const now = this.o.now();
    const first = w.missingSince === undefined;
    if (first) w.missingSince = now;
    const missingFor = now - (w.missingSince ?? now);
    if (!first && missingFor < this.o.missingGraceMs) return false;
    let found: JobSnapshot | undefined;
    try {
      this.stats.lookups++;
      found = await this.client.finalState(w.id);
    } catch (e) {
      this.o.onPollError?.(e);
    }
    if (found) {
      // Known elsewhere but not to our squeue filter (e.g. renamed): look again after another grace period.
      if (!isFinal(found.state)) w.missingSince = now;
      return this.see(w, found);
    }
    if (first) return false;
    this.watches.delete(w.id);
    w.resolve({ kind: 'lost', id: w.id, last: w.last, missingForMs: missingFor });
    return true;
  }

  private squeueFailed(e: unknown): void {
    this.o.onPollError?.(e);
    const now = this.o.now();
    this.failingSince ??= now;
    if (now - this.failingSince < this.o.unreachableMs) return;
    const said = e instanceof Error ? e.message : String(e);
    const error = new FacepipeError(
      {
        code: 'slurm-unreachable',
        message: `squeue has failed for ${Math.round((now - this.failingSince) / 1000)} s: ${said}`,
        hint: 'is slurmctld up? (scontrol ping); the jobs may still be running: a new run adopts them',
      },
      1,
    );
    for (const w of this.watches.values()) w.reject(error);
    this.watches.clear();
  }

  private schedule(delay: number): void {
    if (this.o.manual || this.closed || !this.watches.size) return;
    if (this.polling) return; // the round in flight reschedules when it ends
    const due = this.o.now() + delay;
    if (this.timer && this.timerDue <= due) return;
    clearTimeout(this.timer);
    this.timerDue = due;
    this.timer = setTimeout(() => void this.tick(), delay);
  }

  private async tick(): Promise<void> {
    this.timer = undefined;
    this.polling = true;
    this.poked = false;
    try {
      await this.poll();
    } finally {
      this.polling = false;
    }
    if (this.poked) this.interval = this.o.minIntervalMs;
    this.schedule(this.interval);
  }
}
