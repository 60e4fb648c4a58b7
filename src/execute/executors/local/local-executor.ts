// The local executor: each job runs in its own worker process on this machine (a crash, even a wasm abort,
// cannot take the runner down). The worker runs the job side (src/execute/job.ts), which commits the record.
import { fork } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Executor, JobEvents, JobOutcome, StageJob } from '../../../contracts/executor.js';
import { WORKDIR_RESERVED_PREFIX } from '../../../contracts/stage-kind.js';
import { identityOf, isValidPid, liveness, pidRunning, type ProcessIdentity } from '../../../core/procs.js';
import { sourceDir } from '../../../core/source-dir.js';
import { Workspace } from '../../workspace.js';
import type { FromWorker, ToWorker } from './protocol.js';

const workerPath = join(sourceDir, 'execute', 'executors', 'local', 'worker.js');

/** Who works in a stage's scratch folder: the worker's pid, start time, host and boot. */
const OWNER_FILE = `${WORKDIR_RESERVED_PREFIX}worker.json`;

/**
 * A worker orphaned by a kill -9 of its runner exits on its own within ~2 s, but until then it could still
 * write into the stage's scratch folder (e.g. an epoch checkpoint). Before reusing that folder, stop it: only
 * if it is that very process (same host, boot and start time; a reused pid is left alone) and a worker.
 */
async function stopPreviousOwner(workDir: string): Promise<void> {
  let owner: Partial<ProcessIdentity>;
  try {
    owner = JSON.parse(readFileSync(join(workDir, OWNER_FILE), 'utf8')) as Partial<ProcessIdentity>;
  } catch {
    return;
  }
  if (!isValidPid(owner.pid) || owner.pid === process.pid || typeof owner.host !== 'string') return;
  if (typeof owner.start !== 'number' || liveness(owner as ProcessIdentity) !== 'alive') return;
  try {
    // The note is in the workspace: kill only a facepipe worker, never whatever it names.
    if (!readFileSync(`/proc/${owner.pid}/cmdline`, 'utf8').includes(workerPath)) return;
  } catch {
    return;
  }
  try {
    process.kill(owner.pid, 'SIGKILL');
  } catch {
    return;
  }
  for (let i = 0; i < 100 && pidRunning(owner.pid, owner.start); i++) await new Promise((r) => setTimeout(r, 20));
}

/** Split a stream into lines for the job's log. */
function pipeLines(stream: NodeJS.ReadableStream | null, log: (line: string) => void): void {
  let buf = '';
  stream?.on('data', (chunk: Buffer) => {
    buf += chunk.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) log(l);
  });
  stream?.on('end', () => {
    if (buf) log(buf);
  });
}

function crashMessage(code: number | null, sig: NodeJS.Signals | null): string {
  return sig
    ? `the stage's process was killed by ${sig}`
    : `the stage's process exited with code ${code} before finishing (a crash, e.g. out of memory)`;
}

export class LocalExecutor implements Executor {
  readonly name = 'local';

  async run(job: StageJob, events: JobEvents, signal: AbortSignal): Promise<JobOutcome> {
    const workDir = new Workspace(job.workspace, { statCache: false }).workDir(job.key);
    await stopPreviousOwner(workDir);
    return new Promise((resolve) => {
      const child = fork(workerPath, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced' });
      try {
        mkdirSync(workDir, { recursive: true });
        if (child.pid !== undefined) writeFileSync(join(workDir, OWNER_FILE), JSON.stringify(identityOf(child.pid)));
      } catch {
        /* cannot write the note (disk full?): the worker still stops when its runner goes away */
      }
      let outcome: JobOutcome | undefined;
      pipeLines(child.stdout, (l) => events.log(l));
      pipeLines(child.stderr, (l) => events.log(l));
      let killTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        if (child.connected) child.send({ type: 'abort' } satisfies ToWorker);
        child.kill('SIGTERM');
        killTimer = setTimeout(() => child.kill('SIGKILL'), 5000);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      child.on('message', (m: FromWorker) => {
        if (m.type === 'progress') events.progress(m.text);
        else if (m.type === 'report') events.report(m.report);
        else if (m.type === 'log') events.log(m.line);
        else if (m.type === 'metrics') events.metrics(m.values);
        else if (m.type === 'outcome') outcome = m.outcome;
      });
      let settled = false;
      const settle = (o: JobOutcome) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        if (killTimer) clearTimeout(killTimer);
        resolve(o);
      };
      child.on('exit', (code, sig) => {
        if (signal.aborted && outcome?.state !== 'done') settle({ state: 'interrupted' });
        else settle(outcome ?? { state: 'failed', error: crashMessage(code, sig) });
      });
      child.on('error', (e) => settle({ state: 'failed', error: `cannot start the stage's process: ${e.message}` }));
      child.send({ type: 'start', job } satisfies ToWorker);
    });
  }
}
