// What the Slurm executor keeps under .facepipe/slurm/<run id>/ on the shared filesystem:
//   job.sh                        the batch script of every job of the run (exec node <entry> <job file>)
//   <stage>.<attempt>.job.json    what a job runs (a StageJob), read by entry.ts on the compute node
//   <stage>.<job id>.log          the job's log (stdout and stderr; executor.logs moves these)
//   <stage>.<job id>.report.json  what the job side reported (outcome, host, times), written last by the job
//   canary.<job id>.{log,json}    the canary job's log and report
//   jobs.jsonl                    the ledger: one line per job submitted and per job seen ending
//   closed                        written when no job of the run can still be alive
// The ledger is how a new run finds the jobs of an interrupted one. It is checked line by line, never trusted:
// a resumed run adopts a job only when Slurm itself lists it under the run's tag with the stage key as comment.
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isPlainObject } from '../../../core/objects.js';

export const SLURM_DIR = join('.facepipe', 'slurm');

/** A run's tag: every job of the run has it as --job-name (squeue and scancel select by it). */
export const tagOf = (runId: string) => `fp-${runId}`;

/** A stage id as a file name ('exp/triarchy' -> 'exp__triarchy'). */
export const safeId = (stageId: string) => stageId.replace(/\//g, '__');

export function runDir(workspace: string, runId: string): string {
  return join(workspace, SLURM_DIR, runId);
}

export interface Submitted {
  event: 'submitted';
  id: string;
  tag: string;
  key: string;
  /** The stage id in its run. */
  stage: string;
  attempt: number;
  log: string;
  report: string;
  /** ms since the epoch */
  at: number;
}

export interface Ended {
  event: 'ended';
  id: string;
  /** Slurm's final state, or DONE when the job's own report and record were seen first, or LOST. */
  state: string;
  node?: string;
  /** When the runner noticed the end (ms since the epoch). */
  at: number;
  /** From the job's report: when the job side started and finished (ms since the epoch). */
  started?: number;
  finished?: number;
}

export type LedgerLine = Submitted | Ended;

const KEY = /^[0-9a-f]{64}$/;
const ID = /^\d+$/;

function isSubmitted(v: Record<string, unknown>, tag: string): boolean {
  return (
    v.event === 'submitted' &&
    typeof v.id === 'string' &&
    ID.test(v.id) &&
    v.tag === tag &&
    typeof v.key === 'string' &&
    KEY.test(v.key) &&
    typeof v.stage === 'string' &&
    typeof v.attempt === 'number' &&
    typeof v.log === 'string' &&
    typeof v.report === 'string' &&
    typeof v.at === 'number'
  );
}

function isEnded(v: Record<string, unknown>): boolean {
  return v.event === 'ended' && typeof v.id === 'string' && ID.test(v.id) && typeof v.state === 'string';
}

export function appendLedger(dir: string, line: LedgerLine): void {
  appendFileSync(join(dir, 'jobs.jsonl'), JSON.stringify(line) + '\n');
}

/** The ledger of one run; lines that do not parse or do not belong to the run are left out, with a warning. */
export function readLedger(dir: string, runId: string, warn: (m: string) => void): LedgerLine[] {
  const path = join(dir, 'jobs.jsonl');
  if (!existsSync(path)) return [];
  const out: LedgerLine[] = [];
  let bad = 0;
  for (const text of readFileSync(path, 'utf8').split('\n')) {
    if (!text.trim()) continue;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      bad++;
      continue;
    }
    if (isPlainObject(v) && (isSubmitted(v, tagOf(runId)) || isEnded(v))) out.push(v as unknown as LedgerLine);
    else bad++;
  }
  if (bad) warn(`${path}: ${bad} line(s) are not facepipe ledger entries of run ${runId}; ignored`);
  return out;
}

/** Jobs submitted and not yet seen ending, by id. */
export function outstanding(lines: LedgerLine[]): Map<string, Submitted> {
  const open = new Map<string, Submitted>();
  for (const l of lines) {
    if (l.event === 'submitted') open.set(l.id, l);
    else open.delete(l.id);
  }
  return open;
}

/** Runs of this workspace whose jobs may still be alive (no `closed` marker), oldest first. */
export function openRuns(workspace: string): Array<{ runId: string; dir: string; tag: string }> {
  const root = join(workspace, SLURM_DIR);
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && /^[\w.+-]+$/.test(d.name) && !existsSync(join(root, d.name, 'closed')))
    .map((d) => ({ runId: d.name, dir: join(root, d.name), tag: tagOf(d.name) }))
    .sort((a, b) => a.runId.localeCompare(b.runId));
}

/**
 * Folders of closed runs (no job can still be alive) that are not among the kept runs: their job logs were moved
 * to the stage records, and no later run reads them. An open run's folder stays: its jobs may still be adopted.
 */
export function closedRunDirs(workspace: string, keptRuns: ReadonlySet<string>): string[] {
  const root = join(workspace, SLURM_DIR);
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !keptRuns.has(d.name) && existsSync(join(root, d.name, 'closed')))
    .map((d) => join(root, d.name));
}

/** No job of this run can still be alive: later runs need not look at it. */
export function closeRun(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'closed'), new Date().toISOString() + '\n');
}
