// The DAG runner. For each stage: wait for its upstream stages, resolve input digests, compute the key, ask the
// one decision (plan/decide.ts), restore a cached result, or hand the job to the executor, whose job side
// commits the record; then put the outputs in results/ and note the key as the experiment's last state.
// Several experiments (sweep points) run together: a stage whose key is already running or done in this run is
// shared, so common stages (split, pretext) run once.
import { appendFileSync, existsSync, readdirSync } from 'node:fs';
import { writeError } from '../core/fsutil.js';
import { availableParallelism } from 'node:os';
import type { EventSink, StageState } from '../contracts/events.js';
import type { Executor, JobEvents, StageJob } from '../contracts/executor.js';
import { WORKDIR_RESERVED_PREFIX } from '../contracts/stage-kind.js';
import type { KeyMaterial, StageRecord } from '../contracts/records.js';
import type { Reason } from '../contracts/reasons.js';
import type { StageSpec } from '../load/load.js';
import { decide, pickStages, type Decision, type Selection, type StagePick } from '../plan/decide.js';
import { keyMaterial } from '../plan/keys.js';
import { formatReasons } from '../plan/reasons.js';
import { Admission, defaultMemoryBudgetMB, stageMemoryMB } from './admission.js';
import { inputDigests, type StageInputs } from './inputs.js';
import { readLastState, writeLastState, type LastState } from './last-state.js';
import { StepClock } from './progress.js';
import type { Experiment } from '../plan/experiments.js';
import { stageResources } from './resources.js';
import { newRunId, RunRecord, type RunStatus, type StageResult } from './run-record.js';
import type { Workspace } from './workspace.js';

export type { Experiment, StageResult };

export interface RunOptions {
  workspace: Workspace;
  experiments: Experiment[];
  jobs: number;
  force: string[];
  /** Targets (--until) and the other ways of forcing (--force-downstream); `force` adds to its force list. */
  selection?: Selection;
  backend: string;
  executor: Executor;
  emit: EventSink;
  signal: AbortSignal;
  argv: string[];
  runId?: string;
  /** Stages start only while the sum of their memory estimates stays within this (MiB). */
  memoryBudgetMB?: number;
  /** Keys that failed before (watch mode): not retried until their inputs or params change, i.e. their key. */
  failedKeys?: Map<string, string>;
  /** Attempts after a failed one, for stages whose own `retries:` says nothing (config: executor.retries). */
  retries?: number;
}

export interface RunResult {
  id: string;
  status: RunStatus;
  stages: StageResult[];
  recordPath: string;
  /** Why the run itself stopped (e.g. its record could not be written: disk full); stage failures are not here. */
  error?: Error;
}

export function qualifiedId(exp: Experiment, stage: string, many: boolean): string {
  return many ? `${exp.name}/${stage}` : stage;
}

/** What running (or finding) one key gave; shared by every experiment whose stage has that key. */
interface Execution {
  record?: StageRecord;
  state: StageState;
  reasons: Reason[];
  durationMs: number;
  error?: string;
  log?: string;
  /** Gives the job slot back once the outputs are in results/ (so --jobs 1 says 'done' before the next runs). */
  releaseSlot?: () => void;
}

class Runner {
  private readonly many: boolean;
  private readonly record: RunRecord;
  private readonly admission: Admission;
  private readonly shared = new Map<string, Promise<Execution>>();
  private readonly cores: number;
  private readonly picks = new Map<Experiment, StagePick>();
  /** Aborted by the caller (Ctrl-C) or by a fatal error of the run itself. */
  private readonly signal: AbortSignal;
  private readonly stopping = new AbortController();
  private fatal?: Error;
  private readonly brokenLogs = new Set<string>();

  constructor(private readonly o: RunOptions) {
    this.signal = AbortSignal.any([o.signal, this.stopping.signal]);
    this.many = o.experiments.length > 1;
    const sel = { ...o.selection, force: [...o.force, ...(o.selection?.force ?? [])] };
    for (const e of o.experiments)
      this.picks.set(
        e,
        pickStages(e.graph, (s) => qualifiedId(e, s, this.many), sel),
      );
    this.record = new RunRecord(o.workspace, o.runId ?? newRunId(), o.experiments, {
      argv: o.argv,
      backend: o.backend,
      executor: o.executor.name,
    });
    this.admission = new Admission(o.jobs, o.memoryBudgetMB ?? defaultMemoryBudgetMB());
    o.workspace.warnSink = (message) => o.emit({ type: 'warning', message });
    // Cores are shared, not oversubscribed: each of `jobs` stages running at once gets an equal part.
    this.cores = Math.max(1, Math.floor(availableParallelism() / Math.max(1, o.jobs)));
  }

  private get ws(): Workspace {
    return this.o.workspace;
  }

  async run(): Promise<RunResult> {
    const ids = this.o.experiments.flatMap((e) =>
      this.picks.get(e)!.stages.map((s) => qualifiedId(e, s.name, this.many)),
    );
    this.o.emit({
      type: 'run-start',
      runId: this.record.id,
      pipeline: this.o.experiments[0].pipeline.file,
      experiment: this.o.experiments.map((e) => e.name).join(', '),
      stages: ids,
      jobs: this.o.jobs,
    });
    try {
      this.record.write('running');
      const all: Promise<unknown>[] = [];
      for (const exp of this.o.experiments) {
        const last = readLastState(this.ws, exp.name, (message) => this.ws.warn(message));
        const promises = new Map<string, Promise<StageResult>>();
        for (const s of this.picks.get(exp)!.stages) {
          const p = this.stage(exp, last, s, promises);
          promises.set(s.name, p);
          all.push(p.catch((e: unknown) => this.stopRun(e)));
        }
      }
      await Promise.all(all); // each settles: a stage's throw stops the run (stopRun)
    } catch (e) {
      this.stopRun(e);
    } finally {
      this.saveStatCache();
      await this.o.executor.close?.();
    }
    const results = this.record.stages;
    // Stages a fatal error left mid-way did not finish: say so (renderers wait for every stage to end).
    for (const r of results)
      if (r.state === 'waiting' || r.state === 'running')
        this.finish(
          r,
          'interrupted',
          [{ kind: 'run-stopped', error: this.fatal?.message ?? 'unknown error' }],
          undefined,
          false,
        );
    const status: RunStatus = this.fatal
      ? 'failed'
      : results.some((r) => r.state === 'interrupted') || this.o.signal.aborted
        ? 'interrupted'
        : results.some((r) => r.state === 'failed' || r.state === 'skipped')
          ? 'failed'
          : 'ok';
    const final = await this.record.finish(status, this.fatal);
    this.fatal = final.error;
    const recordPath = this.record.path.slice(this.ws.root.length + 1);
    this.o.emit({
      type: 'run-end',
      runId: this.record.id,
      status: final.status,
      durationMs: this.record.durationMs,
      recordPath,
    });
    return {
      id: this.record.id,
      status: final.status,
      stages: results,
      recordPath: this.record.path,
      error: this.fatal,
    };
  }

  /**
   * The run itself cannot go on (its record or a log cannot be written, e.g. disk full): stop starting stages,
   * interrupt the running ones, and end with this error. Stage failures never come here.
   */
  private stopRun(e: unknown): void {
    this.fatal ??= e instanceof Error ? e : new Error(String(e));
    this.stopping.abort();
  }

  /** The stat cache only saves re-hashing: failing to save it is worth a warning, not the run. */
  private saveStatCache(): void {
    try {
      this.ws.digests.save();
    } catch (e) {
      this.o.emit({ type: 'warning', message: `${(e as Error).message}; the next run re-hashes its inputs` });
    }
  }

  private finish(res: StageResult, state: StageState, reasons: Reason[], error?: string, note = true): StageResult {
    res.state = state;
    res.reasons = reasons;
    res.reason = formatReasons(reasons);
    if (error) res.error = error;
    const { id: stage, durationMs, log } = res;
    this.o.emit({ type: 'stage-state', stage, state, reasons, reason: res.reason, durationMs, error, log });
    if (note && state !== 'cached') this.record.write('running');
    return res;
  }

  /** One stage of one experiment, from waiting to its final state. */
  private async stage(
    exp: Experiment,
    last: LastState,
    stage: StageSpec,
    ups: Map<string, Promise<StageResult>>,
  ): Promise<StageResult> {
    const sid = qualifiedId(exp, stage.name, this.many);
    const res: StageResult = {
      id: sid,
      experiment: exp.name,
      stage: stage.name,
      kind: stage.kind.name,
      kindVersion: stage.kind.version,
      state: 'waiting',
      reasons: [],
      reason: '',
      durationMs: 0,
      params: stage.params,
      inputs: {},
      outputs: {},
      metrics: {},
    };
    this.record.stages.push(res);
    const upstream = new Map<string, StageResult>();
    for (const u of exp.graph.upstream.get(stage.name) ?? []) upstream.set(u, await ups.get(u)!);
    const blocked = [...upstream.values()].find((u) => u.state !== 'cached' && u.state !== 'done');
    if (this.signal.aborted) return this.finish(res, 'interrupted', [{ kind: 'interrupted-before-start' }]);
    if (blocked)
      return this.finish(res, blocked.state === 'interrupted' ? 'interrupted' : 'skipped', [
        { kind: 'upstream-not-done', stage: blocked.stage, state: blocked.state },
      ]);
    let inputs: StageInputs;
    try {
      inputs = (await inputDigests(this.ws, stage, (n) => upstream.get(n)?.outputs))!;
    } catch (e) {
      // An unreadable input (deleted since validation, a symlink inside a folder) fails this stage, not the run.
      return this.finish(res, 'failed', [], (e as Error).message);
    }
    res.inputs = inputs.digests;
    const material = keyMaterial(stage, inputs.digests);
    const decision = await decide({
      stage,
      material,
      last: last[stage.name]?.material,
      forced: this.picks.get(exp)!.forced.get(stage.name),
      inputLabels: inputs.labels,
      cache: this.ws.store,
      failedBefore: (key) => this.o.failedKeys?.get(key),
    });
    if (decision.action === 'maybe') throw new Error('unreachable: the material is known');
    const key = decision.key!;
    res.key = key;
    let pending = this.shared.get(key);
    if (!pending) {
      pending = this.execution(decision, key, stage, sid, material, inputs);
      this.shared.set(key, pending);
    }
    this.o.emit({ type: 'stage-state', stage: sid, state: 'waiting' });
    const out = await pending;
    try {
      return await this.settle(res, exp, last, stage, key, material, out);
    } finally {
      out.releaseSlot?.();
    }
  }

  private async execution(
    decision: Exclude<Decision, { action: 'maybe' }>,
    key: string,
    stage: StageSpec,
    sid: string,
    material: KeyMaterial,
    inputs: StageInputs,
  ): Promise<Execution> {
    if (decision.action === 'cached') return { record: decision.record, state: 'cached', reasons: [], durationMs: 0 };
    if (decision.action === 'not-retried')
      return { state: 'failed', reasons: decision.reasons, durationMs: 0, error: decision.error };
    const releaseSlot = await this.admission.acquire(stageMemoryMB(stage));
    try {
      if (this.signal.aborted)
        return { state: 'interrupted', reasons: [{ kind: 'interrupted-before-start' }], durationMs: 0, releaseSlot };
      return { ...(await this.execute(stage, sid, key, material, inputs, decision)), releaseSlot };
    } catch (e) {
      releaseSlot();
      throw e;
    }
  }

  /** Hand the stage to the executor and learn its outcome from the job's report and the store's record. */
  private async execute(
    stage: StageSpec,
    sid: string,
    key: string,
    material: KeyMaterial,
    inputs: StageInputs,
    decision: Extract<Decision, { action: 'run' }>,
  ): Promise<Execution> {
    const t0 = Date.now();
    const why = decision.reasons;
    const workDir = this.ws.workDir(key);
    // Scratch left by an interrupted run of this very key (e.g. epoch checkpoints): the stage resumes from it.
    const resuming = existsSync(workDir) && readdirSync(workDir).some((f) => !f.startsWith(WORKDIR_RESERVED_PREFIX));
    const reasons: Reason[] = resuming ? [...why, { kind: 'resuming-checkpoint' }] : why;
    const logPath = this.record.logPath(sid);
    const log = logPath.slice(this.ws.root.length + 1);
    this.o.emit({ type: 'stage-state', stage: sid, state: 'running', reasons, reason: formatReasons(reasons), log });
    const writeLog = (line: string) => {
      if (!this.brokenLogs.has(logPath)) {
        try {
          appendFileSync(logPath, line + '\n');
        } catch (e) {
          // Called from the executor's event handlers: never throw here; stop the run instead.
          this.brokenLogs.add(logPath);
          this.stopRun(writeError(logPath, e));
        }
      }
      this.o.emit({ type: 'stage-log', stage: sid, line });
    };
    writeLog(`# ${sid}: ${formatReasons(reasons)}`);
    const clock = new StepClock(t0);
    const job: StageJob = {
      runId: this.record.id,
      id: sid,
      stage: stage.name,
      key,
      material,
      kind: { name: stage.kind.name, version: stage.kind.version, runModule: stage.kind.runModule },
      params: stage.params,
      inputs: inputs.paths,
      outputs: stage.outputs,
      workspace: this.ws.root,
      backend: this.o.backend,
      cores: this.cores,
      resources: stageResources(stage, this.o.backend),
      attempt: 1,
      ...(decision.prefix?.prefix !== undefined
        ? {
            epochState: {
              prefix: decision.prefix.prefix,
              param: decision.prefix.param,
              epoch: decision.prefix.epoch,
              from: decision.continueFrom,
            },
          }
        : {}),
    };
    const events: JobEvents = {
      progress: (text) => this.o.emit({ type: 'stage-progress', stage: sid, text }),
      report: (r) => this.o.emit(clock.event(sid, r)),
      log: writeLog,
      metrics: (values) => {
        if (typeof values.adapter === 'string') this.record.adaptersUsed[sid] = values.adapter;
        if (typeof values.backend !== 'string') return;
        this.record.backendsUsed[sid] = values.backend;
        this.o.emit({ type: 'backend', stage: sid, backend: values.backend });
      },
    };
    // facepipe owns retries (Slurm jobs are submitted with --no-requeue): a failed attempt is tried again, from
    // the stage's scratch folder (checkpoints), unless it was cancelled or the run is stopping.
    const retries = stage.retries ?? this.o.retries ?? 0;
    let outcome = await this.o.executor.run(job, events, this.signal);
    while (
      outcome.state === 'failed' &&
      outcome.retryable !== false &&
      job.attempt <= retries &&
      !this.signal.aborted
    ) {
      writeLog(`# attempt ${job.attempt} of ${retries + 1} failed: ${outcome.error}; trying again`);
      this.o.emit({ type: 'stage-progress', stage: sid, text: `attempt ${job.attempt + 1} of ${retries + 1}` });
      job.attempt++;
      outcome = await this.o.executor.run(job, events, this.signal);
    }
    const durationMs = Date.now() - t0;
    if (outcome.state === 'done') {
      const record = this.ws.store.readRecord(key);
      if (record) {
        writeLog(`# done in ${(durationMs / 1000).toFixed(2)} s`);
        return { record, state: 'done', reasons, durationMs, log };
      }
      return { state: 'failed', reasons, durationMs, log, error: `the job reported success but wrote no record` };
    }
    if (outcome.state === 'interrupted' || this.signal.aborted) {
      writeLog('# interrupted');
      return { state: 'interrupted', reasons, durationMs, log };
    }
    if (outcome.stack && process.env.FACEPIPE_DEBUG) writeLog(outcome.stack);
    writeLog(`# failed: ${outcome.error}`);
    return { state: 'failed', reasons, durationMs, log, error: `${outcome.error} (log: ${log})` };
  }

  /** Put the outputs in results/<experiment>/<stage>/ and remember the key as this stage's last state. */
  private async settle(
    res: StageResult,
    exp: Experiment,
    last: LastState,
    stage: StageSpec,
    key: string,
    material: KeyMaterial,
    out: Execution,
  ): Promise<StageResult> {
    res.durationMs = out.durationMs;
    res.log = out.log;
    if (out.record) {
      res.metrics = out.record.metrics;
      res.computed = { durationMs: out.record.durationMs, completedAt: out.record.completedAt };
      if (out.record.continuedFrom) res.continuedFrom = out.record.continuedFrom;
      try {
        for (const [name, so] of Object.entries(out.record.outputs)) {
          const dest = this.ws.outputPath(exp.name, stage.name, name);
          await this.ws.store.materialize(so, dest);
          res.outputs[name] = { ...so, path: dest };
        }
      } catch (e) {
        // E.g. results/<exp> turned into a symlink out of the workspace: this stage fails, the run ends cleanly.
        return this.finish(res, 'failed', out.reasons, (e as Error).message);
      }
      if (last[stage.name]?.key !== key) {
        last[stage.name] = { key, material };
        try {
          writeLastState(this.ws, exp.name, last);
        } catch (e) {
          // It only words rerun reasons; the stage's record and results are in place.
          this.o.emit({ type: 'warning', message: `${(e as Error).message}; rerun reasons may say "never run"` });
        }
      }
    }
    return this.finish(res, out.state, out.reasons, out.error);
  }
}

export function runExperiments(o: RunOptions): Promise<RunResult> {
  return new Runner(o).run();
}
