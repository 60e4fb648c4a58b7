// The local executor: each job runs in its own worker process on this machine (a crash, even a wasm abort,
// cannot take the runner down). The worker runs the job side (src/execute/job.ts), which commits the record.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Executor, JobEvents, JobOutcome, StageJob } from '../../../contracts/executor.js';
import { Workspace } from '../../workspace.js';
import type { FromWorker, ToWorker } from './protocol.js';

const workerPath = fileURLToPath(new URL('./worker.js', import.meta.url));

const OWNER_FILE = '.worker-pid';

/**
 * A worker orphaned by a kill -9 of its runner exits on its own within ~2 s, but until then it could still
 * write into the stage's scratch folder (e.g. an epoch checkpoint). Before reusing that folder, stop it.
 */
async function stopPreviousOwner(workDir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(join(workDir, OWNER_FILE), 'utf8'));
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return;
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return; // gone (or no /proc)
  }
  if (!cmdline.includes(workerPath)) return; // the pid now belongs to something else
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 20));
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
        writeFileSync(join(workDir, OWNER_FILE), String(child.pid));
      } catch {
        /* scratch folder missing: nothing to guard */
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
