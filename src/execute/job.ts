// The job side of a stage, the same on every executor: run the kind in this process, check and ingest its
// outputs into the store, and commit the stage record last. A job killed at any moment leaves no record, so no
// partial output is ever served; its scratch folder (epoch checkpoints) survives for the next attempt.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobEvents, JobOutcome, StageJob } from '../contracts/executor.js';
import type { EpochStateRecord, StageRecord, StoredOutput } from '../contracts/records.js';
import { WORKDIR_RESERVED_PREFIX, type StageContext, type StageRun } from '../contracts/stage-kind.js';
import { FacepipeError } from '../core/errors.js';
import { displayPath, isNoSpace, writeError } from '../core/fsutil.js';
import { isPlainObject } from '../core/objects.js';
import { isSha256, readSealed, writeSealed } from '../core/sealed.js';
import { writeJobOwner } from './leftovers.js';
import { takeLease } from './leases.js';
import { Workspace } from './workspace.js';

/** Where a job writes its outputs before they are ingested. */
export function jobTmpDir(ws: Workspace, job: Pick<StageJob, 'runId' | 'id'>): string {
  return join(ws.tmpDir, `${job.runId}-${job.id.replace(/\//g, '__')}`);
}

class OutputProblem extends Error {}

/** A full disk met while the kind wrote (Node's message names no file): say where the stage writes. */
function describeFailure(err: Error, ws: Workspace, tmp: string, workDir: string): string {
  if (err instanceof FacepipeError || !isNoSpace(err)) return err.message;
  const path = (err as NodeJS.ErrnoException).path;
  if (path) return writeError(path, err).message;
  const where = [tmp, workDir].map((p) => displayPath(ws.root, p)).join(' or ');
  return `${writeError(where, err).message.replace(/^cannot write /, 'cannot write into ')} while the stage ran`;
}

async function loadRun(runModule: string): Promise<StageRun> {
  const mod = (await import(runModule)) as { run?: StageRun; default?: StageRun };
  const run = mod.run ?? mod.default;
  if (typeof run !== 'function') throw new Error(`${runModule} does not export run(ctx)`);
  return run;
}

async function ingestOutputs(ws: Workspace, job: StageJob, paths: Record<string, string>) {
  const stored: Record<string, StoredOutput> = {};
  for (const out of job.outputs) {
    const path = paths[out.name];
    if (!existsSync(path))
      throw new OutputProblem(`the stage finished without writing its output '${out.name}' (${out.type})`);
    const s = await ws.store.ingest(path);
    if (s.type !== out.type)
      throw new OutputProblem(
        `output '${out.name}' is declared as a ${out.type} but the stage wrote a ${s.type === 'dir' ? 'folder' : 'file'}`,
      );
    stored[out.name] = s;
  }
  return stored;
}

/** In the scratch folder: the cached epoch state this lineage of attempts started from (epoch-prefix reuse). */
const CONTINUED_FILE = `${WORKDIR_RESERVED_PREFIX}continued.json`;
type Continued = NonNullable<StageRecord['continuedFrom']> & { seeding?: true };
const isContinued = (v: unknown): v is Continued =>
  isPlainObject(v) && Number.isInteger(v.epoch) && isSha256(v.key) && (v.seeding === undefined || v.seeding === true);

/** The kind's own entries of the scratch folder (an earlier attempt's checkpoint, or a state put there). */
function ownEntries(workDir: string): string[] {
  return existsSync(workDir) ? readdirSync(workDir).filter((f) => !f.startsWith(WORKDIR_RESERVED_PREFIX)) : [];
}

/**
 * Epoch-prefix reuse, before the kind runs: when the scratch folder holds nothing of its own, the cached state
 * (a snapshot of a shorter run's scratch folder) is put there, so the kind resumes from it as from its own
 * checkpoint, checking it as it checks its own. The note says which state the lineage started from; it says
 * `seeding` until every entry is in place, so an attempt killed half-way is seeded again, never half-resumed.
 */
async function seedFromEpochState(
  ws: Workspace,
  from: EpochStateRecord | undefined,
  tmp: string,
  workDir: string,
  log: (l: string) => void,
) {
  const note = join(workDir, CONTINUED_FILE);
  const r = readSealed(note, isContinued);
  if (r.state === 'ok' && r.value.seeding) {
    for (const name of ownEntries(workDir)) await rm(join(workDir, name), { recursive: true, force: true });
    await rm(note, { force: true });
  }
  if (!from || ownEntries(workDir).length) return;
  const staged = join(tmp, '.epoch-state-in');
  await ws.store.materialize(from.state, staged);
  writeSealed(note, { epoch: from.epoch, key: from.key, seeding: true } satisfies Continued);
  for (const name of await readdir(staged)) await rename(join(staged, name), join(workDir, name));
  await rm(staged, { recursive: true, force: true });
  writeSealed(note, { epoch: from.epoch, key: from.key } satisfies Continued);
  log(`continuing from the cached state at epoch ${from.epoch} (left by ${from.key.slice(0, 12)})`);
}

/** After the kind ran: its snapshot at the last epoch into the store, and its state record (before the stage's). */
async function storeEpochState(ws: Workspace, job: StageJob, out: string): Promise<void> {
  const e = job.epochState;
  if (!e || !existsSync(out) || !(await readdir(out)).length) return;
  const state = await ws.store.ingest(out);
  ws.store.writeEpochState({
    prefix: e.prefix,
    param: e.param,
    epoch: e.epoch,
    key: job.key,
    stage: job.stage,
    material: job.material,
    state,
    completedAt: new Date().toISOString(),
  });
}

function continuedFrom(workDir: string): StageRecord['continuedFrom'] {
  const r = readSealed(join(workDir, CONTINUED_FILE), isContinued);
  return r.state === 'ok' && !r.value.seeding ? { epoch: r.value.epoch, key: r.value.key } : undefined;
}

export async function executeJob(job: StageJob, events: JobEvents, signal: AbortSignal): Promise<JobOutcome> {
  const t0 = Date.now();
  const ws = new Workspace(job.workspace, { statCache: false });
  const tmp = jobTmpDir(ws, job);
  const workDir = ws.workDir(job.key);
  const metrics: Record<string, number | string> = {};
  let releaseLease = () => {};
  try {
    // Until the end, gc must leave this job's temp and scratch folders and its new store objects alone.
    releaseLease = takeLease(ws, { key: job.key, tmp, workDir });
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    writeJobOwner(tmp); // a sweep removes this folder only once this process is dead
    await mkdir(workDir, { recursive: true });
    const outputs: Record<string, string> = {};
    for (const out of job.outputs) {
      outputs[out.name] = join(tmp, out.name);
      if (out.type === 'dir') await mkdir(outputs[out.name], { recursive: true });
    }
    // Output names start with a letter: these cannot collide with them.
    const stateOut = join(tmp, '.epoch-state-out');
    if (job.epochState) {
      await seedFromEpochState(ws, job.epochState.from, tmp, workDir, (l) => events.log(l));
      await mkdir(stateOut, { recursive: true });
    }
    const ctx: StageContext = {
      stage: job.stage,
      params: job.params,
      inputs: job.inputs,
      outputs,
      workDir,
      workspace: job.workspace,
      backend: job.backend,
      cores: job.cores,
      progress: (text) => events.progress(text),
      report: (r) => events.report(r),
      log: (line) => events.log(line),
      metrics: (values) => {
        Object.assign(metrics, values);
        events.metrics(values);
      },
      signal,
      epochState: job.epochState && {
        out: stateOut,
        restarted: () => rmSync(join(workDir, CONTINUED_FILE), { force: true }),
      },
    };
    await (
      await loadRun(job.kind.runModule)
    )(ctx);
    if (signal.aborted) return { state: 'interrupted' };
    const stored = await ingestOutputs(ws, job, outputs);
    await storeEpochState(ws, job, stateOut);
    const from = job.epochState ? continuedFrom(workDir) : undefined;
    const record: StageRecord = {
      key: job.key,
      stage: job.stage,
      material: job.material,
      outputs: stored,
      completedAt: new Date().toISOString(),
      durationMs: Date.now() - t0,
      metrics,
      ...(from ? { continuedFrom: from } : {}),
    };
    ws.store.writeRecord(record); // the commit point
    await rm(workDir, { recursive: true, force: true });
    return { state: 'done', record };
  } catch (e) {
    if (signal.aborted && !(e instanceof OutputProblem)) return { state: 'interrupted' };
    const err = e instanceof Error ? e : new Error(String(e));
    return { state: 'failed', error: describeFailure(err, ws, tmp, workDir), stack: err.stack };
  } finally {
    await rm(tmp, { recursive: true, force: true });
    releaseLease();
  }
}
