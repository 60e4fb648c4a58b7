import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { StageContext, StageRun } from '../../contracts/stage-kind.js';
import type { CommandParams } from './kind.js';

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const envName = (s: string) => s.replace(/[^A-Za-z0-9_]/g, '_');

export const run: StageRun<CommandParams> = (ctx) =>
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
    // Own process group, so that stopping the stage stops everything the command started.
    const child = spawn('/bin/sh', ['-c', cmd], {
      cwd: ctx.workspace,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const kill = () => {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        /* already gone */
      }
    };
    ctx.signal.addEventListener('abort', kill, { once: true });
    process.on('exit', kill);
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
    lines(child.stdout, true);
    lines(child.stderr, false);
    child.on('error', reject);
    child.on('exit', (code, sig) => {
      ctx.signal.removeEventListener('abort', kill);
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
