// One run session, shared by `run` and `watch`: the renderer, the workspace lock, the backend, the job slots
// and the executor around one runExperiments call.
import type { EventSink } from '../contracts/events.js';
import { FacepipeError } from '../core/errors.js';
import { createExecutor, EXECUTOR_NAMES } from '../execute/executors/registry.js';
import { displayPath } from '../core/fsutil.js';
import { sweepLeftovers } from '../execute/leftovers.js';
import type { HalvingOutcome, HalvingSetup } from '../execute/halving.js';
import { acquireLock } from '../execute/lock.js';
import { runExperiments, type Experiment, type RunResult } from '../execute/runner.js';
import type { Selection } from '../plan/decide.js';
import type { Loaded } from './context.js';
import { jsonRenderer } from './renderers/json.js';
import { plainRenderer } from './renderers/plain.js';

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'json';

export async function pickRenderer(
  mode: ProgressMode | undefined,
  verbose: boolean,
): Promise<{ sink: EventSink; done: () => Promise<void> }> {
  const m = mode ?? 'auto';
  if (m === 'json') return { sink: jsonRenderer(), done: async () => {} };
  if (m === 'tty' || (m === 'auto' && process.stdout.isTTY && !process.env.CI)) {
    const { listrRenderer } = await import('./renderers/listr.js');
    return listrRenderer();
  }
  return { sink: plainRenderer(undefined, verbose), done: async () => {} };
}

/** A whole number >= 1 from a command-line option, or a bad-input error naming the option. */
export function positiveInt(option: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n < 1)
    throw new FacepipeError({
      code: 'bad-option',
      file: 'command line',
      message: `${option} ${JSON.stringify(text)}: expected a whole number of at least 1`,
      hint: `e.g. ${option} 2`,
    });
  return n;
}

/** A whole number (a seed: negative allowed) from a command-line option, or a bad-input error. */
export function wholeNumber(option: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^\s*-?\d+\s*$/.test(text) || !Number.isSafeInteger(n))
    throw new FacepipeError({
      code: 'bad-option',
      file: 'command line',
      message: `${option} ${JSON.stringify(text)}: expected a whole number`,
      hint: `e.g. ${option} 0`,
    });
  return n;
}

/** A positive number of MiB from a command-line option, or a bad-input error. */
export function positiveMiB(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new FacepipeError({
      code: 'bad-option',
      file: 'command line',
      message: `${option} ${JSON.stringify(text)}: expected a positive number of MiB`,
      hint: `e.g. ${option} 8192`,
    });
  return n;
}

export interface SessionOptions {
  loaded: Loaded;
  experiments: Experiment[];
  command: string;
  progress: ProgressMode;
  verbose: boolean;
  wait: boolean;
  /** --jobs; absent: the executor's default (1 for local, many for a cluster). */
  jobs?: number;
  force: string[];
  /** Targets and the other ways of forcing (--until, --force-downstream). */
  selection?: Selection;
  backend: string;
  /** --executor; absent: the config's `executor.type`, else local. */
  executor?: string;
  memoryBudgetMB?: number;
  failedKeys?: Map<string, string>;
  signal: AbortSignal;
  /** A halving sweep: its rungs run one after another in this session (`experiments` is then the first rung's). */
  halving?: HalvingSetup;
}

/** The executor a run uses: --executor, else the config's `executor.type`, else local; bad input names the place. */
export function executorName(flag: string | undefined, loaded: Loaded): string {
  const settings = loaded.pipeline.executor;
  const name = flag ?? settings.type ?? 'local';
  if (EXECUTOR_NAMES.includes(name)) return name;
  const where = flag === undefined ? settings.where.type : undefined;
  throw new FacepipeError({
    code: 'unknown-executor',
    ...(where ?? { file: 'command line' }),
    keyPath: where ? 'executor.type' : undefined,
    message: `${where ? 'executor.type' : '--executor'} ${JSON.stringify(name)}: no such executor`,
    hint: `use one of ${EXECUTOR_NAMES.join(', ')}`,
  });
}

export async function runSession(o: SessionOptions): Promise<RunResult & { halving?: HalvingOutcome }> {
  const name = executorName(o.executor, o.loaded);
  const renderer = await pickRenderer(o.progress, o.verbose);
  const release = await acquireLock(o.loaded.ws.lockPath, {
    command: o.command,
    wait: o.wait,
    signal: o.signal,
    onWait: (holder) => renderer.sink({ type: 'lock-wait', holder }),
    onTakeOver: (why) => renderer.sink({ type: 'warning', message: why }),
  });
  try {
    // Under the lock no other run of this host writes here; what dead writers left is removed.
    const swept = sweepLeftovers(o.loaded.ws).removed;
    if (swept.length)
      renderer.sink({
        type: 'warning',
        message: `removed ${swept.length} temporary file(s) left by processes that died (${displayPath(o.loaded.ws.root, swept[0])}${swept.length > 1 ? ', ...' : ''})`,
      });
    const executor = await createExecutor(name, {
      workspace: o.loaded.ws.root,
      settings: o.loaded.pipeline.executor,
      warn: (message) => renderer.sink({ type: 'warning', message }),
    });
    const options = {
      workspace: o.loaded.ws,
      jobs: o.jobs ?? executor.admission?.jobs ?? 1,
      force: o.force,
      selection: o.selection,
      backend: o.backend,
      executor,
      emit: renderer.sink,
      signal: o.signal,
      argv: process.argv.slice(2),
      memoryBudgetMB: o.memoryBudgetMB ?? executor.admission?.memoryBudgetMB,
      failedKeys: o.failedKeys,
      retries: o.loaded.pipeline.executor.retries,
    };
    const result: RunResult & { halving?: HalvingOutcome } = o.halving
      ? await (await import('../execute/halving.js')).runHalving({ ...options, setup: o.halving })
      : await runExperiments({ ...options, experiments: o.experiments });
    await renderer.done();
    return result;
  } finally {
    release();
  }
}
