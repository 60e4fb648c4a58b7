// The record of one run: results/runs/<id>/run.json (params, keys, states, reasons, timings, backends,
// versions, the git commit), rewritten as stages progress, and, at the end, results/<experiment>/experiment.json,
// the latest params and metrics of each experiment for comparisons. A stage this run did not complete keeps
// its last complete figures there, marked with the run they come from. Progress notes, not commit points (the
// stage records in the store are those): no fsync.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { StageState } from '../contracts/events.js';
import type { StoredOutput } from '../contracts/records.js';
import type { Reason } from '../contracts/reasons.js';
import { headlineOf } from '../contracts/stage-kind.js';
import { overwriteInPlace, writeError, writeFileAtomic } from '../core/fsutil.js';
import { isPlainObject } from '../core/objects.js';
import { facepipeVersion, packageVersion } from '../core/version.js';
import type { Experiment } from '../plan/experiments.js';
import type { SweepStanding } from '../plan/halving.js';
import { readGitState, type GitState } from './git.js';
import type { Workspace } from './workspace.js';

export interface StageResult {
  id: string;
  experiment: string;
  stage: string;
  kind: string;
  kindVersion: string;
  key?: string;
  state: StageState;
  reasons: Reason[];
  /** The reasons worded for people. */
  reason: string;
  durationMs: number;
  params: Record<string, unknown>;
  inputs: Record<string, string>;
  outputs: Record<string, StoredOutput & { path: string }>;
  metrics: Record<string, number | string>;
  /** When the outputs were computed and how long that took (a cached stage: the run that made them). */
  computed?: { durationMs: number; completedAt: string };
  /** Training began from a cached epoch state (its epoch, and the stage key that left it). */
  continuedFrom?: { epoch: number; key: string };
  error?: string;
  log?: string;
}

/** One stage in experiment.json. */
interface StageSummary {
  state: StageState | 'not-run';
  key?: string;
  params: Record<string, unknown>;
  metrics: Record<string, number | string>;
  outputs: Record<string, string>;
  durationMs?: number;
  completedAt?: string;
  headline?: Array<{ metric: string; goal: 'max' | 'min' }>;
  /** Figures of an earlier run, kept because this one did not complete the stage: which run, and why. */
  kept?: { run: string; state: string };
}

const complete = (state: string) => state === 'done' || state === 'cached';

/** The stages of a previous experiment.json that can be carried over (anything else there is ignored). */
function previousStages(file: string): { run: string; stages: Record<string, StageSummary> } | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
  if (!isPlainObject(raw) || typeof raw.lastRun !== 'string' || !isPlainObject(raw.stages)) return undefined;
  const stages: Record<string, StageSummary> = {};
  for (const [name, v] of Object.entries(raw.stages)) {
    if (!isPlainObject(v) || typeof v.state !== 'string' || !isPlainObject(v.params) || !isPlainObject(v.outputs))
      continue;
    if (!isPlainObject(v.metrics) || !Object.values(v.metrics).every((m) => ['number', 'string'].includes(typeof m)))
      continue;
    const kept = isPlainObject(v.kept) && typeof v.kept.run === 'string' ? v.kept.run : undefined;
    if (!complete(v.state) && !kept) continue;
    stages[name] = { ...(v as unknown as StageSummary), kept: kept ? { run: kept, state: '' } : undefined };
  }
  return { run: raw.lastRun, stages };
}

export type RunStatus = 'ok' | 'failed' | 'interrupted';

export function newRunId(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').replace('Z', '') + '-' + randomBytes(2).toString('hex');
}

export class RunRecord {
  readonly dir: string;
  readonly path: string;
  readonly stages: StageResult[] = [];
  readonly backendsUsed: Record<string, string> = {};
  /** webgpu stages: the adapter they ran on. */
  readonly adaptersUsed: Record<string, string> = {};
  private readonly started = Date.now();
  private git: GitState | null | undefined;
  private readonly gitReady: Promise<void>;

  constructor(
    private readonly ws: Workspace,
    readonly id: string,
    private readonly experiments: Experiment[],
    private readonly info: { argv: string[]; backend: string; executor: string },
  ) {
    this.dir = join(ws.runsDir, id);
    try {
      mkdirSync(join(this.dir, 'logs'), { recursive: true });
    } catch (e) {
      throw writeError(join(this.dir, 'logs'), e);
    }
    this.path = join(this.dir, 'run.json');
    this.gitReady = readGitState(ws.root).then((g) => {
      this.git = g;
    });
  }

  /**
   * The last writes: every experiment.json, then the final status in run.json (with the git state). A summary
   * that cannot be written fails the run; the record itself is never left 'running' (writeFinal). Returns what
   * the record now says, and the error that stopped the run, if any.
   */
  async finish(status: RunStatus, error?: Error): Promise<{ status: RunStatus; error?: Error }> {
    await this.gitReady;
    try {
      this.writeExperimentSummaries();
    } catch (e) {
      error ??= e instanceof Error ? e : new Error(String(e));
      status = 'failed';
    }
    const final = this.writeFinal(status, error?.message);
    return { status: final.status, error: error ?? final.error };
  }

  logPath(stageId: string): string {
    return join(this.dir, 'logs', `${stageId.replace(/\//g, '__')}.log`);
  }

  get durationMs(): number {
    return Date.now() - this.started;
  }

  write(status: RunStatus | 'running', error?: string): void {
    // The temporary file sits in results/runs/ itself: the leftover sweep at each start lists that one folder
    // instead of opening every past run's (src/execute/leftovers.ts).
    writeFileAtomic(this.path, JSON.stringify(this.content(status, error), null, 2), {
      durable: false,
      tmpAt: join(this.ws.runsDir, `${this.id}.run.json`),
    });
  }

  /**
   * The closing write. When the disk is full the usual write (a new file, renamed) cannot happen, so the record
   * is overwritten in place, in the blocks it already has, as 'failed' with the error (compact, and cut down to
   * the stage states if it must): a record is never left saying 'running'. Returns what the record now says.
   */
  writeFinal(status: RunStatus, error?: string): { status: RunStatus; error?: Error } {
    try {
      this.write(status, error);
      return { status };
    } catch (e) {
      const err = e as Error;
      const full = this.content('failed', err.message);
      const brief = {
        id: full.id,
        status: full.status,
        error: full.error,
        pipeline: full.pipeline,
        startedAt: full.startedAt,
        endedAt: full.endedAt,
        stages: this.stages.map((s) => ({ id: s.id, state: s.state, key: s.key })),
      };
      if (!overwriteInPlace(this.path, JSON.stringify(full))) overwriteInPlace(this.path, JSON.stringify(brief));
      return { status: 'failed', error: err };
    }
  }

  private content(status: RunStatus | 'running', error?: string) {
    const first = this.experiments[0]?.pipeline;
    return {
      id: this.id,
      status,
      ...(error !== undefined ? { error } : {}),
      pipeline: first?.file,
      experiments: this.experiments.map((e) => ({ name: e.name, point: e.point ?? {} })),
      argv: this.info.argv,
      configs: first?.configFiles,
      sets: first?.sets,
      executor: this.info.executor,
      git: this.git,
      backend: { requested: this.info.backend, used: this.backendsUsed, adapters: this.adaptersUsed },
      versions: {
        facepipe: facepipeVersion(),
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
        tfjs: packageVersion('@tensorflow/tfjs-core'),
      },
      startedAt: new Date(this.started).toISOString(),
      endedAt: status === 'running' ? undefined : new Date().toISOString(),
      durationMs: this.durationMs,
      stages: this.stages,
    };
  }

  /** results/<experiment>/experiment.json for every experiment whose results folder exists. */
  writeExperimentSummaries(): void {
    for (const exp of this.experiments) {
      const dir = join(this.ws.resultsDir, exp.name);
      if (!existsSync(dir)) continue;
      const file = join(dir, 'experiment.json');
      const summary = {
        experiment: exp.name,
        pipeline: exp.pipeline.file,
        lastRun: this.id,
        startedAt: new Date(this.started).toISOString(),
        git: this.git ?? null,
        point: exp.point ?? {},
        ...(exp.standing ? { sweep: exp.standing } : {}),
        stages: this.stageSummaries(exp, previousStages(file)),
      };
      writeFileAtomic(file, JSON.stringify(summary, null, 2), { durable: false });
    }
  }

  private stageSummaries(exp: Experiment, previous: ReturnType<typeof previousStages>): Record<string, StageSummary> {
    const out: Record<string, StageSummary> = {};
    for (const spec of exp.pipeline.stages) {
      const s = this.stages.find((r) => r.experiment === exp.name && r.stage === spec.name);
      const old = previous?.stages[spec.name];
      if (s && complete(s.state)) {
        out[spec.name] = {
          state: s.state,
          key: s.key,
          params: s.params,
          metrics: s.metrics,
          outputs: Object.fromEntries(
            Object.entries(s.outputs).map(([k, v]) => [k, v.path.slice(this.ws.root.length + 1)]),
          ),
          durationMs: s.computed?.durationMs,
          completedAt: s.computed?.completedAt,
          headline: headlineOf(spec.kind, spec.params),
        };
      } else if (old) {
        // Interrupted, failed or not taken by this run (--until): the last complete figures, marked.
        const run = old.kept?.run ?? previous?.run ?? '';
        out[spec.name] = { ...old, kept: { run, state: s?.state ?? 'not-run' } };
      } else if (s) {
        out[spec.name] = { state: s.state, key: s.key, params: s.params, metrics: {}, outputs: {} };
      }
    }
    return out;
  }
}

/**
 * A halving sweep ranked a rung: the standing of an experiment it ran (rank, promoted or stopped, why) goes into
 * its experiment.json, which the rung's run has just written. Nothing is written when that file is not there.
 */
export function writeStanding(ws: Workspace, experiment: string, standing: SweepStanding): void {
  const file = join(ws.resultsDir, experiment, 'experiment.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return;
  }
  if (!isPlainObject(raw)) return;
  writeFileAtomic(file, JSON.stringify({ ...raw, sweep: standing }, null, 2), { durable: false });
}
