// The one interface every stage kind implements. A kind lives in its own folder
// src/stages/<name>/ with a light `kind.ts` (schema, inputs, outputs; loaded by every
// CLI command) and a heavy `run.ts` (loaded only inside the stage's worker process,
// so that `facepipe status` never pulls in TensorFlow.js).
import type { StageResources } from './resources.js';

import type { StageReport } from './events.js';

export type JsonSchema = Record<string, unknown>;

/** A figure that sums a stage up, and which way is better. */
export interface HeadlineMetric {
  metric: string;
  goal: 'max' | 'min';
}

export interface InputSpec {
  name: string;
  /** What the input must hold, shown in errors and docs. */
  description: string;
  /** Optional inputs may be left unwired in the pipeline. */
  optional?: boolean;
}

export interface OutputSpec {
  name: string;
  /** 'file' or 'dir': what the stage writes at ctx.outputs[name]. */
  type: 'file' | 'dir';
  description: string;
}

export interface StageKind<P = Record<string, unknown>> {
  name: string;
  /** Bump when the same params and inputs would now give different outputs. Part of the cache key. */
  version: string;
  description: string;
  /** JSON Schema (draft 2020-12 subset ajv handles) for params; unknown keys must be rejected. Defaults are applied. */
  paramsSchema: JsonSchema;
  /** Declared inputs, or 'any' for kinds that take whatever the pipeline wires (the command kind). */
  inputs(params: P): InputSpec[] | 'any';
  outputs(params: P): OutputSpec[];
  /** Path of the module (relative to this kind's folder, e.g. './run.js') whose `run` export executes the stage. */
  runModule: string;
  /** True when run() loads TensorFlow.js (the runner then picks and reports a backend). */
  usesTensorflow?: boolean;
  /**
   * Peak memory of one run of this stage in MiB, for the scheduler's memory budget. Default: 4096 for
   * TensorFlow.js kinds (the wasm heap's ceiling), 256 otherwise.
   */
  memoryMB?(params: P): number;
  /**
   * What one run asks of a cluster node by default (GPUs, cores, memory, time); the pipeline's `resources:`
   * and the config's `executor.resources` override it. `backend` is the one the run asks for.
   */
  resources?(params: P, backend: string): StageResources;
  /**
   * The metrics that sum a run of this kind up, most important first: `facepipe exps` shows them by default,
   * `watch` prints them after each run, and the first one of the last stage picks a sweep's best point.
   */
  headline?: HeadlineMetric[] | ((params: P) => HeadlineMetric[]);
  /**
   * Epoch-prefix reuse: training to E epochs is an exact prefix of training to E' > E with the same other params.
   * The kind leaves its state at the last epoch in ctx.epochState.out (a snapshot of its scratch folder); a later
   * run with more epochs starts from that snapshot in its scratch folder, as if resuming, and trains only the rest.
   */
  epochPrefix?: EpochPrefix<P>;
}

export interface EpochPrefix<P = Record<string, unknown>> {
  /** The top-level integer param that counts epochs, e.g. 'epochs'. */
  param: string;
  /** Why these params make the path depend on the epoch count (a schedule over all epochs), or undefined. */
  blocker?: (params: P) => string | undefined;
}

/** Why a stage's epoch prefix cannot be reused, or undefined when it can (or its kind has none). */
export function prefixBlocker(
  kind: Pick<StageKind, 'epochPrefix'>,
  params: Record<string, unknown>,
): string | undefined {
  return kind.epochPrefix?.blocker?.(params);
}

/** A stage's headline metrics (its kind's, for its params). */
export function headlineOf(kind: Pick<StageKind, 'headline'>, params: Record<string, unknown>): HeadlineMetric[] {
  return typeof kind.headline === 'function' ? kind.headline(params) : (kind.headline ?? []);
}

export interface StageContext<P = Record<string, unknown>> {
  /** Stage name in the pipeline, e.g. 'triarchy'. */
  stage: string;
  params: P;
  /** Absolute paths of the inputs, by input name (files or directories, read-only). */
  inputs: Record<string, string>;
  /** Absolute paths where the stage must write each output (parents exist; 'dir' outputs are pre-created empty). */
  outputs: Record<string, string>;
  /**
   * Persistent scratch for this exact cache key: survives an interrupted run (epoch checkpoints go here), removed
   * after success. Names starting with WORKDIR_RESERVED_PREFIX are facepipe's own (who works there).
   */
  workDir: string;
  /** Workspace root (absolute). */
  workspace: string;
  /** Backend preference: 'auto' | 'tensorflow' | 'wasm' | 'cpu'. */
  backend: string;
  /** CPU cores this stage may use: all of them for a single run, a fair share when stages run side by side. */
  cores: number;
  /** Update the live detail line, e.g. "validating". */
  progress(text: string): void;
  /** Report progress as data: training steps (a bar with ETA) or a validation result (always shown). */
  report(r: StageReport): void;
  /** Append a line to the stage's log. */
  log(line: string): void;
  /** Report figures worth recording in the run record (accuracy, params, timings). */
  metrics(values: Record<string, number | string>): void;
  /** Aborted when the run is cancelled; long loops should check it between steps. */
  signal: AbortSignal;
  /**
   * Kinds with epochPrefix: where to leave the snapshot of the scratch folder at the last epoch (an empty folder),
   * and `restarted()` to call when the kind throws its scratch state away and starts from scratch (so the record
   * does not claim a continuation that did not happen).
   */
  epochState?: { out: string; restarted(): void };
}

/** Files in a workDir named so record who works there (a worker, a command's session), not stage progress. */
export const WORKDIR_RESERVED_PREFIX = '.facepipe-';

export type StageRun<P = Record<string, unknown>> = (ctx: StageContext<P>) => Promise<void>;

/** The stage kinds known to this installation, by name (src/stages/registry.ts builds it). */
export interface KindCatalog {
  get(name: string): StageKind | undefined;
  names(): string[];
}
