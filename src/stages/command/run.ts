import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WORKDIR_RESERVED_PREFIX, type StageContext, type StageRun } from '../../contracts/stage-kind.js';
import { hasEnv, identityOf, isValidPid, killSession, type ProcessIdentity } from '../../core/procs.js';
import type { CommandParams } from './kind.js';

/** The command's session, written down so that a later attempt can stop it if it outlived its worker. */
const SESSION_FILE = `${WORKDIR_RESERVED_PREFIX}command-session.json`;

/**
 * Runs first in the shell, before the command: a watchdog in the command's process group that reads fd 3, a
 * socket whose other end only the worker holds. When the worker dies in any way (kill -9 included), the read
 * ends and the watchdog kills the whole group, so no part of the command outlives the process that owns it.
 * Started from a subshell that exits at once, so it is no job of the command's shell (`wait` does not wait for
 * it); it ignores SIGTERM, which stopping a stage sends to the group, so it stays until the group is gone.
 */
const WATCHDOG = `( { trap '' TERM INT HUP; read -r _ <&3; kill -KILL 0; } </dev/null >/dev/null 2>&1 & ); exec 3<&-\n`;

/** Stop a session a previous attempt recorded here if any of it still runs (its watchdog could not act). */
async function stopPrevious(workDir: string, log: (line: string) => void): Promise<void> {
  let rec: Partial<ProcessIdentity>;
  try {
    rec = JSON.parse(readFileSync(join(workDir, SESSION_FILE), 'utf8')) as Partial<ProcessIdentity>;
  } catch {
    return; // none recorded, or damaged: the watchdog is the guard then
  }
  if (!isValidPid(rec.pid) || typeof rec.host !== 'string') return;
  // Ours only if one of its processes runs for this very scratch folder (commands inherit the variable).
  const marker = `FACEPIPE_WORK_DIR=${workDir}`;
  const killed = await killSession(rec as ProcessIdentity, (pid) => hasEnv(pid, marker));
  if (killed.length)
    log(`# stopped ${killed.length} process(es) of an earlier attempt still running here (pids ${killed.join(' ')})`);
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const envName = (s: string) => s.replace(/[^A-Za-z0-9_]/g, '_');

export const run: StageRun<CommandParams> = async (ctx) => {
  await stopPrevious(ctx.workDir, (line) => ctx.log(line));
  return runShell(ctx);
};

const runShell: StageRun<CommandParams> = (ctx) =>
  new Promise((resolve, reject) => {
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      ...Object.fromEntries(Object.entries(ctx.params.env).map(([k, v]) => [k, String(v)])),
      FACEPIPE_WORK_DIR: ctx.workDir,
      FACEPIPE_STAGE: ctx.stage,
    };
    for (const [n, p] of Object.entries(ctx.inputs)) env[`FACEPIPE_IN_${envName(n)}`] = p;
    for (const [n, p] of Object.entries(ctx.outputs)) env[`FACEPIPE_OUT_${envName(n)}`] = p;
    const cmd = ctx.params.cmd.replace(/\{(inputs|outputs)\.([A-Za-z0-9_-]+)\}/g, (m, which: string, name: string) => {
      const p = (which === 'inputs' ? ctx.inputs : ctx.outputs)[name];
      if (p === undefined)
        throw new Error(
          `cmd refers to ${m}, but the stage has no ${which === 'inputs' ? 'input' : 'output'} '${name}'`,
        );
      return quote(p);
    });
    // Own session and process group, so that stopping the stage stops everything the command started.
    const child = spawn('/bin/sh', ['-c', WATCHDOG + cmd], {
      cwd: ctx.workspace,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    const signalGroup = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        /* already gone */
      }
    };
    const kill = () => signalGroup('SIGTERM');
    ctx.signal.addEventListener('abort', kill, { once: true });
    if (child.pid !== undefined) {
      try {
        writeFileSync(join(ctx.workDir, SESSION_FILE), JSON.stringify(identityOf(child.pid)));
      } catch {
        /* no scratch folder: the watchdog still guards */
      }
    }
    const lines = (stream: NodeJS.ReadableStream, progress: boolean) => {
      let buf = '';
      stream.on('data', (c: Buffer) => {
        buf += c.toString();
        const parts = buf.split(/\r?\n|\r/);
        buf = parts.pop()!;
        for (const l of parts) {
          ctx.log(l);
          if (progress && l.trim()) ctx.progress(l.trim().slice(0, 120));
        }
      });
      stream.on('end', () => {
        if (buf) ctx.log(buf);
      });
    };
    lines(child.stdout!, true);
    lines(child.stderr!, false);
    child.on('error', reject);
    child.on('exit', (code, sig) => {
      ctx.signal.removeEventListener('abort', kill);
      // What the command left running in its group (background jobs) ends with the stage, before its outputs
      // are read; then the watchdog's socket is closed.
      signalGroup('SIGKILL');
      child.stdio[3]?.destroy();
      if (code === 0) {
        try {
          reportMetrics(ctx);
          resolve();
        } catch (e) {
          reject(e as Error);
        }
      } else reject(new Error(sig ? `command killed by ${sig}` : `command exited with code ${code}`));
    });
  });

/** The metrics file's numbers and strings as the stage's metrics (`metrics: OUTPUT`). */
function reportMetrics(ctx: StageContext<CommandParams>): void {
  const name = ctx.params.metrics;
  if (name === undefined) return;
  if (ctx.params.outputs[name] !== 'file')
    throw new Error(`metrics: '${name}' must name a file output (outputs: { ${name}: file })`);
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(ctx.outputs[name], 'utf8'));
  } catch (e) {
    throw new Error(`metrics file '${name}' is not JSON: ${(e as Error).message}`, { cause: e });
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new Error(`metrics file '${name}' must hold a JSON object, e.g. {"loss": 0.3}`);
  const values = Object.fromEntries(
    Object.entries(v).filter(
      (e): e is [string, number | string] =>
        (typeof e[1] === 'number' && Number.isFinite(e[1])) || typeof e[1] === 'string',
    ),
  );
  ctx.metrics(values);
}

export default run;
