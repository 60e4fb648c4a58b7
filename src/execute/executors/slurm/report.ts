// How a Slurm job that did not commit its stage is reported: what Slurm says (TIMEOUT, OUT_OF_MEMORY,
// NODE_FAIL, CANCELLED, ...) and what the job side said, with the log's path and its last lines, so that a job
// never "fails without logs".
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import type { StageResources } from '../../../contracts/resources.js';
import { displayPath } from '../../../core/fsutil.js';
import { isJobReport, MARK, type JobReport } from './protocol.js';
import type { JobSnapshot } from './types.js';

/** The last `n` lines of a file (marked lines left out), reading at most its last 16 KiB. */
export function logTail(path: string, n = 12): string[] {
  let text: string;
  try {
    const size = statSync(path).size;
    const len = Math.min(size, 16 * 1024);
    const buf = Buffer.alloc(len);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, buf, 0, len, size - len);
    } finally {
      closeSync(fd);
    }
    text = buf.toString('utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith(MARK))
    .slice(-n);
}

export function readReport(path: string): JobReport | undefined {
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    return isJobReport(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export interface EndFacts {
  id: string;
  /** Slurm's last word on the job; undefined when it lost track of it. */
  job?: JobSnapshot;
  lostForMs?: number;
  report?: JobReport;
  log: string;
  workspace: string;
  key: string;
  resources: StageResources;
}

function what(f: EndFacts): { text: string; retryable: boolean } {
  const j = f.job;
  const id = `Slurm job ${f.id}`;
  const on = j?.node ? ` on ${j.node}` : '';
  const reported = f.report?.outcome.state === 'failed' ? f.report.outcome.error : undefined;
  const scratch = displayPath(f.workspace, `${f.workspace}/.facepipe/work/${f.key}`);
  if (!j)
    return {
      text: `Slurm lost track of job ${f.id}: missing from squeue, scontrol and sacct for ${Math.round((f.lostForMs ?? 0) / 1000)} s, and it committed no record`,
      retryable: true,
    };
  switch (j.state) {
    case 'TIMEOUT':
      return {
        text: `${id} hit its time limit${on} (resources.time: ${f.resources.time ?? "the partition's default"}); a checkpoint, if the stage writes one, is kept in ${scratch} for the next attempt`,
        retryable: true,
      };
    case 'OUT_OF_MEMORY':
      return {
        text: `${id} ran out of memory${on} (resources.mem: ${f.resources.mem ?? "the partition's default"})`,
        retryable: true,
      };
    case 'NODE_FAIL':
      return { text: `the node running ${id} failed (${j.node ?? 'node unknown'})`, retryable: true };
    case 'CANCELLED':
      return {
        text:
          j.reason === 'DependencyNeverSatisfied'
            ? `${id} was cancelled by Slurm: the canary job it waited for failed`
            : `${id} was cancelled${on} (scancel, or the cluster's administrators)`,
        retryable: false,
      };
    case 'COMPLETED':
      return {
        text:
          reported ??
          `${id} completed${on}, but its stage record is not visible here: is the store on a filesystem the nodes share?`,
        retryable: true,
      };
    case 'FAILED':
      return {
        text:
          reported ??
          `${id} failed${on} (${j.signal ? `killed by signal ${j.signal}` : `exit code ${j.exitCode ?? '?'}`}) before facepipe's job side reported: see its log`,
        retryable: true,
      };
    default:
      return { text: `${id} ended ${j.rawState}${on}${reported ? `: ${reported}` : ''}`, retryable: true };
  }
}

/** The error a stage gets for a job that ended without its record, and whether another attempt may help. */
export function describeEnd(f: EndFacts): { error: string; retryable: boolean } {
  const { text, retryable } = what(f);
  const log = displayPath(f.workspace, f.log);
  const tail = logTail(f.log);
  const logLine = existsSync(f.log)
    ? `\n  log: ${log}${tail.length ? `\n  last lines:\n${tail.map((l) => `    ${l}`).join('\n')}` : ' (empty)'}`
    : `\n  log: ${log} does not exist: the node could not write it (is the workspace on a filesystem the nodes share?)`;
  return { error: text + logLine, retryable };
}
