// Runner side of a stage worker: fork, stream progress, and stop it on abort (gently, then for sure).
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FromWorker, StartMessage } from './worker-protocol.js';

const workerPath = fileURLToPath(new URL('./worker.js', import.meta.url));

export interface WorkerHooks {
  progress(text: string): void;
  log(line: string): void;
  metrics(values: Record<string, number | string>): void;
}

export class StageFailed extends Error {
  constructor(
    message: string,
    readonly aborted = false,
  ) {
    super(message);
  }
}

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
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return;
  } // gone (or no /proc)
  if (!cmdline.includes(workerPath)) return; // the pid now belongs to something else
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await new Promise((r) => setTimeout(r, 20));
}

export async function runInWorker(start: StartMessage, hooks: WorkerHooks, signal: AbortSignal): Promise<void> {
  await stopPreviousOwner(start.ctx.workDir);
  return new Promise((resolve, reject) => {
    const child = fork(workerPath, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced' });
    try {
      writeFileSync(join(start.ctx.workDir, OWNER_FILE), String(child.pid));
    } catch {
      /* scratch folder missing: nothing to guard */
    }
    let settled = false;
    let result: { ok: true } | { ok: false; message: string; aborted: boolean } | undefined;
    const pipeLines = (stream: NodeJS.ReadableStream | null) => {
      let buf = '';
      stream?.on('data', (chunk: Buffer) => {
        buf += chunk.toString();
        const lines = buf.split('\n');
        buf = lines.pop()!;
        for (const l of lines) hooks.log(l);
      });
      stream?.on('end', () => {
        if (buf) hooks.log(buf);
      });
    };
    pipeLines(child.stdout);
    pipeLines(child.stderr);
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      if (child.connected) child.send({ type: 'abort' });
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 5000);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    child.on('message', (m: FromWorker) => {
      if (m.type === 'progress') hooks.progress(m.text);
      else if (m.type === 'log') hooks.log(m.line);
      else if (m.type === 'metrics') hooks.metrics(m.values);
      else if (m.type === 'done') result = { ok: true };
      else if (m.type === 'error') {
        if (m.stack && process.env.FACEPIPE_DEBUG) hooks.log(m.stack);
        result = { ok: false, message: m.message, aborted: !!m.aborted };
      }
    });
    child.on('exit', (code, sig) => {
      signal.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      if (settled) return;
      settled = true;
      if (signal.aborted) return reject(new StageFailed('interrupted', true));
      if (result?.ok) return resolve();
      if (result) return reject(new StageFailed(result.message, result.aborted));
      reject(
        new StageFailed(
          sig
            ? `the stage's process was killed by ${sig}`
            : `the stage's process exited with code ${code} before finishing (a crash, e.g. out of memory)`,
        ),
      );
    });
    child.on('error', (e) => {
      if (!settled) {
        settled = true;
        reject(e);
      }
    });
    child.send(start);
  });
}
