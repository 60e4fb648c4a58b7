// The DAG runner. For each stage: resolve input digests, compute the key, use the cache when its record and
// objects are intact, else run the stage in its own process, store its outputs, and commit the record last.
// Several experiments (sweep points) can run together: a stage whose key is already running or done in
// this run is shared, so common stages (split, pretext) run once.
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { totalmem } from 'node:os';
import { FacepipeError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fsutil.js';
import { facepipeVersion, packageVersion } from '../core/version.js';
import type { EventSink, StageState } from '../core/events.js';
import { explainRerun, keyMaterial, stageKey, type KeyMaterial } from '../plan/keys.js';
import type { StageGraph } from '../plan/graph.js';
import type { PipelineSpec, StageSpec } from '../load/load.js';
import { runInWorker, StageFailed } from './stage-process.js';
import type { StageRecord, StoredOutput } from './store.js';
import type { Workspace } from './workspace.js';

export interface Experiment {
  /** results/<name>/ holds its outputs. */
  name: string;
  pipeline: PipelineSpec;
  graph: StageGraph;
  /** The params that make this experiment differ from the base (sweeps), for the record. */
  point?: Record<string, unknown>;
}

export interface RunOptions {
  workspace: Workspace;
  experiments: Experiment[];
  jobs: number;
  force: string[];
  backend: string;
  emit: EventSink;
  signal: AbortSignal;
  argv: string[];
  runId?: string;
  /** Stages start only while the sum of their memory estimates stays within this (MiB). */
  memoryBudgetMB?: number;
  /** Keys that failed before (watch mode): not retried until their inputs or params change, i.e. their key. */
  failedKeys?: Map<string, string>;
}

export function stageMemoryMB(stage: StageSpec): number {
  return stage.kind.memoryMB?.(stage.params) ?? (stage.kind.usesTensorflow ? 4096 : 256);
}

export interface StageResult {
  id: string;
  experiment: string;
  stage: string;
  kind: string;
  kindVersion: string;
  key?: string;
  state: StageState;
  reason: string;
  durationMs: number;
  params: Record<string, unknown>;
  inputs: Record<string, string>;
  outputs: Record<string, StoredOutput & { path: string }>;
  metrics: Record<string, number | string>;
  error?: string;
  log?: string;
}

export interface RunResult {
  id: string;
  status: 'ok' | 'failed' | 'interrupted';
  stages: StageResult[];
  recordPath: string;
}

type LastState = Record<string, { key: string; material: KeyMaterial }>;

function readLast(ws: Workspace, exp: string): LastState {
  try {
    return JSON.parse(readFileSync(ws.lastStatePath(exp), 'utf8')) as LastState;
  } catch {
    return {};
  }
}

export function newRunId(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').replace('Z', '') + '-' + randomBytes(2).toString('hex');
}

export function qualifiedId(exp: Experiment, stage: string, many: boolean): string {
  return many ? `${exp.name}/${stage}` : stage;
}

/** Digests of a stage's inputs, given where upstream outputs are. Path inputs are hashed (stat-cached). */
export async function inputDigests(
  ws: Workspace,
  stage: StageSpec,
  upstream: (name: string) => Record<string, StoredOutput & { path: string }> | undefined,
): Promise<
  { digests: Record<string, string>; paths: Record<string, string>; labels: Record<string, string> } | undefined
> {
  const digests: Record<string, string> = {};
  const paths: Record<string, string> = {};
  const labels: Record<string, string> = {};
  for (const [name, ref] of Object.entries(stage.inputs)) {
    if (ref.from === 'stage') {
      const outs = upstream(ref.stage);
      if (!outs) return undefined;
      const o = outs[ref.output];
      digests[name] = o.digest;
      paths[name] = o.path;
      labels[name] = ref.stage;
    } else {
      const abs = isAbsolute(ref.path) ? ref.path : resolve(ws.root, ref.path);
      if (!existsSync(abs)) {
        throw new FacepipeError({
          code: 'input-missing',
          message: `input '${name}' of stage '${stage.name}' names ${ref.path}, which does not exist`,
          ...stage.inputWhere[name],
          hint: 'create it, or fix the path (relative to the workspace root)',
        });
      }
      digests[name] = (await ws.digests.inputDigest(abs)).digest;
      paths[name] = abs;
      labels[name] = ref.path;
    }
  }
  return { digests, paths, labels };
}

export async function runExperiments(o: RunOptions): Promise<RunResult> {
  const ws = o.workspace;
  const id = o.runId ?? newRunId();
  const many = o.experiments.length > 1;
  const runDir = join(ws.runsDir, id);
  mkdirSync(join(runDir, 'logs'), { recursive: true });
  const recordPath = join(runDir, 'run.json');
  const started = Date.now();
  const results: StageResult[] = [];
  const backendsUsed: Record<string, string> = {};
  const shared = new Map<
    string,
    Promise<{
      record?: StageRecord;
      state: StageState;
      reason: string;
      durationMs: number;
      error?: string;
      releaseSlot?: () => void;
    }>
  >();

  // Admission: at most `jobs` stages at once, and within the memory budget (one stage always may run,
  // whatever its estimate, so nothing waits forever). Waiting stages start in arrival order.
  const budget = o.memoryBudgetMB ?? Math.floor((totalmem() / 2 ** 20) * 0.75);
  let running = 0;
  let memInUse = 0;
  const queue: Array<{ mem: number; start: () => void }> = [];
  const fits = (mem: number) => running === 0 || (running < o.jobs && memInUse + mem <= budget);
  const pump = () => {
    while (queue.length && fits(queue[0].mem)) {
      const next = queue.shift()!;
      running++;
      memInUse += next.mem;
      next.start();
    }
  };
  const acquire = (mem: number) =>
    new Promise<void>((r) => {
      queue.push({ mem, start: r });
      pump();
    });
  const release = (mem: number) => {
    running--;
    memInUse -= mem;
    pump();
  };

  const record = (status: RunResult['status'] | 'running') => {
    // A progress note, not a commit point: no fsync (the stage records in the store are the commit points).
    writeFileAtomic(
      recordPath,
      JSON.stringify(
        {
          id,
          status,
          pipeline: o.experiments[0]?.pipeline.file,
          experiments: o.experiments.map((e) => ({ name: e.name, point: e.point ?? {} })),
          argv: o.argv,
          configs: o.experiments[0]?.pipeline.configFiles,
          sets: o.experiments[0]?.pipeline.sets,
          backend: { requested: o.backend, used: backendsUsed },
          versions: {
            facepipe: facepipeVersion(),
            node: process.version,
            platform: `${process.platform}-${process.arch}`,
            tfjs: packageVersion('@tensorflow/tfjs-core'),
          },
          startedAt: new Date(started).toISOString(),
          endedAt: status === 'running' ? undefined : new Date().toISOString(),
          durationMs: Date.now() - started,
          stages: results,
        },
        null,
        2,
      ),
      { durable: false },
    );
  };

  const allIds = o.experiments.flatMap((e) => e.graph.order.map((s) => qualifiedId(e, s.name, many)));
  o.emit({
    type: 'run-start',
    runId: id,
    pipeline: o.experiments[0].pipeline.file,
    experiment: o.experiments.map((e) => e.name).join(', '),
    stages: allIds,
    jobs: o.jobs,
  });
  record('running');

  const runOne = async (
    exp: Experiment,
    lastState: LastState,
    stage: StageSpec,
    ups: Map<string, Promise<StageResult>>,
  ): Promise<StageResult> => {
    const sid = qualifiedId(exp, stage.name, many);
    const res: StageResult = {
      id: sid,
      experiment: exp.name,
      stage: stage.name,
      kind: stage.kind.name,
      kindVersion: stage.kind.version,
      state: 'waiting',
      reason: '',
      durationMs: 0,
      params: stage.params,
      inputs: {},
      outputs: {},
      metrics: {},
    };
    results.push(res);
    const upstreamResults = new Map<string, StageResult>();
    for (const u of exp.graph.upstream.get(stage.name) ?? []) upstreamResults.set(u, await ups.get(u)!);
    const blocked = [...upstreamResults.values()].find((u) => !['cached', 'done'].includes(u.state));
    const finish = (state: StageState, reason: string, error?: string) => {
      res.state = state;
      res.reason = reason;
      if (error) res.error = error;
      o.emit({ type: 'stage-state', stage: sid, state, reason, durationMs: res.durationMs, error });
      if (state !== 'cached') record('running');
      return res;
    };
    if (o.signal.aborted) return finish('interrupted', 'run interrupted before it started');
    if (blocked)
      return finish(
        blocked.state === 'interrupted' ? 'interrupted' : 'skipped',
        `upstream ${blocked.stage} ${blocked.state}`,
      );

    let inp: NonNullable<Awaited<ReturnType<typeof inputDigests>>>;
    try {
      inp = (await inputDigests(ws, stage, (n) => upstreamResults.get(n)?.outputs))!;
    } catch (e) {
      // An unreadable input (deleted since validation, a symlink inside a folder) fails this stage, not the run.
      return finish('failed', 'input unreadable', (e as Error).message);
    }
    res.inputs = inp.digests;
    const material = keyMaterial(stage, inp.digests);
    const key = stageKey(material);
    res.key = key;
    const forced = o.force.includes(stage.name) || o.force.includes(sid);

    let pending = shared.get(key);
    if (!pending) {
      pending = (async () => {
        const existing = ws.store.readRecord(key);
        if (existing && !forced && (await ws.store.verifyRecord(existing))) {
          return { record: existing, state: 'cached' as StageState, reason: 'cached', durationMs: 0 };
        }
        const failedBefore = o.failedKeys?.get(key);
        if (failedBefore !== undefined && !forced) {
          return {
            state: 'failed' as StageState,
            reason: 'not retried: it failed with these exact inputs and params; change one to retry',
            durationMs: 0,
            error: failedBefore,
          };
        }
        const last = lastState[stage.name];
        const reason = forced
          ? 'forced (--force)'
          : existing
            ? 'cached output missing or corrupt'
            : explainRerun(stage, material, last?.material, inp.labels);
        const mem = stageMemoryMB(stage);
        await acquire(mem);
        // The slot is held until the stage's outputs are in results/ and 'done' is said (releaseSlot below),
        // so with --jobs 1 no other stage reports 'running' before this one reports 'done'.
        let released = false;
        const releaseSlot = () => {
          if (!released) {
            released = true;
            release(mem);
          }
        };
        try {
          if (o.signal.aborted)
            return {
              state: 'interrupted' as StageState,
              reason: 'run interrupted before it started',
              durationMs: 0,
              releaseSlot,
            };
          return { ...(await execute(stage, sid, key, material, inp.paths, reason)), releaseSlot };
        } catch (e) {
          releaseSlot();
          throw e;
        }
      })();
      shared.set(key, pending);
    }
    const settle = async (out: Awaited<typeof pending>) => {
      res.durationMs = out.durationMs;
      if (out.record) {
        res.metrics = out.record.metrics;
        try {
          for (const [name, so] of Object.entries(out.record.outputs)) {
            const dest = ws.outputPath(exp.name, stage.name, name);
            await ws.store.materialize(so, dest);
            res.outputs[name] = { ...so, path: dest };
          }
        } catch (e) {
          // E.g. results/<exp> turned into a symlink out of the workspace: this stage fails, the run ends cleanly.
          return finish('failed', out.reason, (e as Error).message);
        }
        if (lastState[stage.name]?.key !== key) {
          lastState[stage.name] = { key, material };
          writeFileAtomic(ws.lastStatePath(exp.name), JSON.stringify(lastState), { durable: false });
        }
      }
      return finish(out.state, out.reason, out.error);
    };
    o.emit({ type: 'stage-state', stage: sid, state: 'waiting' });
    const out = await pending;
    try {
      return await settle(out);
    } finally {
      out.releaseSlot?.();
    }
  };

  const execute = async (
    stage: StageSpec,
    sid: string,
    key: string,
    material: KeyMaterial,
    inputPaths: Record<string, string>,
    reason: string,
  ) => {
    const t0 = Date.now();
    // Scratch left by an interrupted run of this very key (e.g. epoch checkpoints): the stage resumes from it.
    if (existsSync(ws.workDir(key)) && readdirSync(ws.workDir(key)).some((f) => f !== '.worker-pid'))
      reason += "; resuming from the interrupted run's checkpoint";
    o.emit({ type: 'stage-state', stage: sid, state: 'running', reason });
    const logPath = join(runDir, 'logs', `${sid.replace(/\//g, '__')}.log`);
    const log = (line: string) => {
      appendFileSync(logPath, line + '\n');
      o.emit({ type: 'stage-log', stage: sid, line });
    };
    log(`# ${sid}: ${reason}`);
    const tmp = join(ws.tmpDir, `${id}-${sid.replace(/\//g, '__')}`);
    await rm(tmp, { recursive: true, force: true });
    const outputs: Record<string, string> = {};
    for (const out of stage.outputs) {
      outputs[out.name] = join(tmp, out.name);
      if (out.type === 'dir') await mkdir(outputs[out.name], { recursive: true });
    }
    await mkdir(tmp, { recursive: true });
    const workDir = ws.workDir(key);
    await mkdir(workDir, { recursive: true });
    const metrics: Record<string, number | string> = {};
    try {
      await runInWorker(
        {
          type: 'start',
          runModule: stage.kind.runModule,
          ctx: {
            stage: stage.name,
            params: stage.params,
            inputs: inputPaths,
            outputs,
            workDir,
            workspace: ws.root,
            backend: o.backend,
          },
        },
        {
          progress: (text) => o.emit({ type: 'stage-progress', stage: sid, text }),
          log,
          metrics: (values) => {
            Object.assign(metrics, values);
            if (typeof values.backend === 'string') {
              backendsUsed[sid] = values.backend;
              o.emit({ type: 'backend', stage: sid, backend: values.backend });
            }
          },
        },
        o.signal,
      );
      const stored: Record<string, StoredOutput> = {};
      for (const out of stage.outputs) {
        if (!existsSync(outputs[out.name]))
          throw new StageFailed(`the stage finished without writing its output '${out.name}' (${out.type})`);
        stored[out.name] = await ws.store.ingest(outputs[out.name]);
        if (stored[out.name].type !== out.type)
          throw new StageFailed(
            `output '${out.name}' is declared as a ${out.type} but the stage wrote a ${stored[out.name].type === 'dir' ? 'folder' : 'file'}`,
          );
      }
      const rec: StageRecord = {
        key,
        stage: stage.name,
        material,
        outputs: stored,
        completedAt: new Date().toISOString(),
        durationMs: Date.now() - t0,
        metrics,
      };
      ws.store.writeRecord(rec); // commit point
      await rm(workDir, { recursive: true, force: true });
      await rm(tmp, { recursive: true, force: true });
      log(`# done in ${((Date.now() - t0) / 1000).toFixed(2)} s`);
      return { record: rec, state: 'done' as StageState, reason, durationMs: Date.now() - t0 };
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      const aborted = (e instanceof StageFailed && e.aborted) || o.signal.aborted;
      const msg = e instanceof FacepipeError ? e.message : (e as Error).message;
      log(`# ${aborted ? 'interrupted' : 'failed'}: ${msg}`);
      return {
        state: (aborted ? 'interrupted' : 'failed') as StageState,
        reason,
        durationMs: Date.now() - t0,
        error: aborted ? undefined : `${msg} (log: ${logPath.slice(ws.root.length + 1)})`,
      };
    }
  };

  try {
    const all: Promise<StageResult>[] = [];
    for (const exp of o.experiments) {
      const last = readLast(ws, exp.name);
      const promises = new Map<string, Promise<StageResult>>();
      for (const s of exp.graph.order) {
        const p = runOne(exp, last, s, promises);
        promises.set(s.name, p);
        all.push(p);
      }
    }
    await Promise.all(all);
  } finally {
    ws.digests.save();
  }
  const status: RunResult['status'] =
    results.some((r) => r.state === 'interrupted') || o.signal.aborted
      ? 'interrupted'
      : results.some((r) => r.state === 'failed' || r.state === 'skipped')
        ? 'failed'
        : 'ok';
  record(status);
  for (const exp of o.experiments)
    writeExperimentSummary(
      ws,
      exp,
      id,
      results.filter((r) => r.experiment === exp.name),
    );
  o.emit({
    type: 'run-end',
    runId: id,
    status,
    durationMs: Date.now() - started,
    recordPath: recordPath.slice(ws.root.length + 1),
  });
  return { id, status, stages: results, recordPath };
}

/** results/<experiment>/experiment.json: the latest params and metrics of one experiment, for comparisons. */
function writeExperimentSummary(ws: Workspace, exp: Experiment, runId: string, stages: StageResult[]): void {
  const dir = join(ws.resultsDir, exp.name);
  if (!existsSync(dir)) return;
  writeFileAtomic(
    join(dir, 'experiment.json'),
    JSON.stringify(
      {
        experiment: exp.name,
        pipeline: exp.pipeline.file,
        lastRun: runId,
        point: exp.point ?? {},
        stages: Object.fromEntries(
          stages.map((s) => [
            s.stage,
            {
              state: s.state,
              key: s.key,
              params: s.params,
              metrics: s.metrics,
              outputs: Object.fromEntries(
                Object.entries(s.outputs).map(([k, v]) => [k, v.path.slice(ws.root.length + 1)]),
              ),
            },
          ]),
        ),
      },
      null,
      2,
    ),
    { durable: false },
  );
}
