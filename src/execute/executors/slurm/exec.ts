// Running one Slurm command: execFile (no shell), a timeout, and errors that say what to do.
import { execFile } from 'node:child_process';
import { FacepipeError } from '../../../core/errors.js';

export interface ExecResult {
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

/** How the client runs a command; tests wrap it to count calls. */
export type SlurmExec = (file: string, args: readonly string[], options: ExecOptions) => Promise<ExecResult>;

/** A Slurm command that ran and exited non-zero; stdout and stderr are kept, since some "errors" are answers. */
export class SlurmCommandError extends FacepipeError {
  readonly command: string;
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  constructor(command: string, status: number | null, out: ExecResult) {
    const said = (out.stderr.trim() || out.stdout.trim()).split('\n').slice(-3).join(' / ') || 'no output';
    super({ code: 'slurm-command', message: `${command} failed (exit status ${status ?? '?'}): ${said}` }, 1);
    this.command = command;
    this.status = status;
    this.stdout = out.stdout;
    this.stderr = out.stderr;
  }
}

const MISSING_HINT =
  "install Slurm's client commands (Debian: apt-get install --no-install-recommends slurm-client) or load your " +
  "cluster's slurm module; on one machine: sudo scripts/dev-cluster.sh start";

export const execSlurm: SlurmExec = (file, args, options) =>
  new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        timeout: options.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 256 * 1024 * 1024,
        env: options.env,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr });
        const command = [file, ...args.slice(0, 3)].join(' ') + (args.length > 3 ? ' ...' : '');
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number };
        if (e.code === 'ENOENT')
          return reject(
            new FacepipeError({ code: 'slurm-missing', message: `${file} not found on PATH`, hint: MISSING_HINT }, 1),
          );
        if (e.killed)
          return reject(
            new FacepipeError(
              {
                code: 'slurm-timeout',
                message: `${command} did not answer within ${Math.round(options.timeoutMs / 1000)} s`,
                hint: 'is slurmctld up and reachable? (scontrol ping)',
              },
              1,
            ),
          );
        reject(new SlurmCommandError(command, typeof e.code === 'number' ? e.code : null, { stdout, stderr }));
      },
    );
  });
