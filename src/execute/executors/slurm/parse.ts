// Pure parsers for the text Slurm's commands print. Tested on fixtures (test/execute/slurm-parse.test.ts), so
// a change in Slurm's output shows up as a failing fixture, not as a wrong job state.
import { FacepipeError } from '../../../core/errors.js';
import { ACTIVE_STATES, FINAL_STATES, isFinal, type ClusterInfo, type JobSnapshot, type JobState } from './types.js';

const KNOWN = new Set<string>([...ACTIVE_STATES, ...FINAL_STATES]);

/** 'CANCELLED by 1000' -> CANCELLED; 'CANCELLED+' (sacct, truncated) -> CANCELLED; long names only. */
export function normalizeState(raw: string): JobState {
  const word = raw.trim().split(/\s+/)[0]?.replace(/\+$/, '').toUpperCase() ?? '';
  return KNOWN.has(word) ? (word as JobState) : 'UNKNOWN';
}

/** A wait(2) status as squeue's exit_code prints it: 768 -> exit 3; 9 -> killed by signal 9. */
export function decodeWaitStatus(status: number): { exitCode: number; signal?: number } {
  const signal = status & 0x7f;
  return signal ? { exitCode: 0, signal } : { exitCode: (status >> 8) & 0xff };
}

/** scontrol's and sacct's 'exit:signal', e.g. '3:0' or '0:9'. */
export function parseExitPair(text: string): { exitCode: number; signal?: number } | undefined {
  const m = /^(\d+):(\d+)$/.exec(text.trim());
  if (!m) return undefined;
  const signal = Number(m[2]);
  return signal ? { exitCode: Number(m[1]), signal } : { exitCode: Number(m[1]) };
}

/** `sbatch --parsable` prints 'id' or 'id;cluster' (warnings go to stderr). */
export function parseSbatchParsable(stdout: string): string {
  const last = stdout.trim().split('\n').pop()?.trim() ?? '';
  const m = /^(\d+)(?:;\S+)?$/.exec(last);
  if (!m)
    throw new FacepipeError(
      { code: 'slurm-output', message: `sbatch printed no job id: ${JSON.stringify(stdout)}` },
      1,
    );
  return m[1];
}

function clean(value: string | undefined): string | undefined {
  const v = value?.trim();
  return v && v !== 'None' && v !== '(null)' && v !== 'N/A' ? v : undefined;
}

/** Fill in the filename patterns Slurm expands in --output that a job's row tells us; others stay as written. */
export function expandLogPath(pattern: string, job: { id: string; name?: string; node?: string }): string {
  return pattern.replace(/%(%|j|x|N)/g, (all: string, c: string) => {
    if (c === '%') return '%';
    if (c === 'j') return job.id;
    if (c === 'x') return job.name ?? all;
    return job.node ?? all;
  });
}

/**
 * The --Format that parseSqueue reads: '|' after each field; StdOut last, so a '|' in a path stays harmless.
 * Comment carries the stage key facepipe submitted the job for (what a resumed run adopts it by).
 */
export const SQUEUE_FORMAT = 'JobID:|,State:|,Reason:|,NodeList:|,exit_code:|,Name:|,Comment:|,STDOUT:|';

/** Rows of `squeue --noheader --Format=SQUEUE_FORMAT`. */
export function parseSqueue(stdout: string): JobSnapshot[] {
  const out: JobSnapshot[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.trim()) continue;
    const f = line.split('|');
    if (f.length < 9) throw new FacepipeError({ code: 'slurm-output', message: `unexpected squeue line: ${line}` }, 1);
    const [id, rawState, reason, node, exit, name, comment] = f.map((s) => s.trim());
    const state = normalizeState(rawState);
    const job: JobSnapshot = { id, state, rawState, source: 'squeue' };
    if (clean(reason)) job.reason = clean(reason);
    if (clean(node)) job.node = clean(node);
    if (clean(name)) job.name = clean(name);
    if (clean(comment)) job.comment = clean(comment);
    const stdoutPath = clean(f.slice(7, -1).join('|'));
    if (stdoutPath) job.stdout = expandLogPath(stdoutPath, job);
    // squeue prints 0 until the job ends; only a final state makes the status meaningful.
    if (isFinal(state) && /^\d+$/.test(exit)) Object.assign(job, decodeWaitStatus(Number(exit)));
    out.push(job);
  }
  return out;
}

// Keys scontrol prints alone on their line; their values may hold spaces.
const WHOLE_LINE_KEYS = /^(Command|WorkDir|StdErr|StdIn|StdOut|Comment|AdminComment|SystemComment|Power|Reservation)=/;

/** `scontrol show job ID` (multi-line form) as key -> value. */
export function parseScontrolFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (WHOLE_LINE_KEYS.test(line)) {
      const at = line.indexOf('=');
      fields.set(line.slice(0, at), line.slice(at + 1));
      continue;
    }
    for (const pair of line.split(/\s+(?=[A-Za-z][\w/:]*=)/)) {
      const at = pair.indexOf('=');
      if (at > 0 && !fields.has(pair.slice(0, at))) fields.set(pair.slice(0, at), pair.slice(at + 1));
    }
  }
  return fields;
}

/** `scontrol show job ID`, or undefined when it names no job. */
export function parseScontrolJob(text: string): JobSnapshot | undefined {
  const f = parseScontrolFields(text);
  const id = f.get('JobId');
  const rawState = f.get('JobState');
  if (!id || !rawState) return undefined;
  const job: JobSnapshot = { id, state: normalizeState(rawState), rawState, source: 'scontrol' };
  const reason = clean(f.get('Reason'));
  if (reason) job.reason = reason;
  const node = clean(f.get('NodeList'));
  if (node) job.node = node;
  const name = clean(f.get('JobName'));
  if (name) job.name = name;
  const comment = clean(f.get('Comment'));
  if (comment) job.comment = comment;
  const stdout = clean(f.get('StdOut'));
  if (stdout) job.stdout = stdout;
  const exit = parseExitPair(f.get('ExitCode') ?? '');
  if (exit && isFinal(job.state)) Object.assign(job, exit);
  return job;
}

/** What sacct prints when there is no accounting database (on stdout or stderr, exit status 0 or 1). */
export function accountingDisabled(text: string): boolean {
  return /accounting storage is disabled/i.test(text);
}

export const SACCT_FIELDS = 'JobID,State,ExitCode,NodeList,JobName';

/** `sacct --noheader --parsable2 --allocations --format=SACCT_FIELDS`. */
export function parseSacct(stdout: string): JobSnapshot[] {
  const out: JobSnapshot[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.trim()) continue;
    const [id, rawState, exit, node, name] = line.split('|').map((s) => s.trim());
    if (!id || !rawState || id.includes('.')) continue; // steps (id.batch, id.0), should --allocations miss one
    const job: JobSnapshot = { id, state: normalizeState(rawState), rawState, source: 'sacct' };
    if (clean(node) && node !== 'None assigned') job.node = clean(node);
    if (clean(name)) job.name = clean(name);
    const pair = parseExitPair(exit ?? '');
    if (pair && isFinal(job.state)) Object.assign(job, pair);
    out.push(job);
  }
  return out;
}

export const SINFO_FORMAT = '%P|%a|%D|%T|%G';

/** `sinfo --noheader --format=SINFO_FORMAT` (one line per partition and node state) and `sinfo --version`. */
export function parseSinfo(stdout: string, versionText: string): ClusterInfo {
  const byName = new Map<string, ClusterInfo['partitions'][number]>();
  for (const line of stdout.split('\n')) {
    if (!line.trim()) continue;
    const [rawName, avail, count, state, gres] = line.split('|').map((s) => s.trim());
    const name = rawName.replace(/\*$/, '');
    let p = byName.get(name);
    if (!p) {
      p = { name, isDefault: rawName.endsWith('*'), available: avail === 'up', nodes: 0, states: [], gres: [] };
      byName.set(name, p);
    }
    p.nodes += Number(count) || 0;
    if (state && !p.states.includes(state)) p.states.push(state);
    for (const g of (gres ?? '').split(',')) if (clean(g) && !p.gres.includes(g)) p.gres.push(g);
  }
  const version = /(\d+\.\d+(?:\.\d+)?)/.exec(versionText)?.[1] ?? versionText.trim();
  return { version, partitions: [...byName.values()] };
}
