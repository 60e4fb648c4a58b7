// Entry point of a Slurm job, on the compute node (job.sh: exec node entry.js <job file>). It runs the same job
// side as the local worker (src/execute/job.ts): the stage reads its inputs from the store, ingests its outputs
// and commits its record last, so a job on another host commits exactly as a local one. Its stdout is the job's
// log; progress and metrics go there as marked lines. `entry.js --canary <file>` checks the node instead.
//
// SIGTERM (Slurm's --signal=B:TERM@60 before the time limit, or scancel) stops the stage between steps; its
// epoch checkpoint stays in .facepipe/work/<key>. The process then waits for Slurm to end the job, so Slurm's
// own final state (TIMEOUT, CANCELLED) says why it stopped.
import { readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { JobOutcome } from '../../../contracts/executor.js';
import { writeFileAtomic } from '../../../core/fsutil.js';
import { facepipeVersion } from '../../../core/version.js';
import { executeJob } from '../../job.js';
import {
  fillJobId,
  isCanaryFile,
  isJobFile,
  MARK,
  type CanaryFile,
  type CanaryReport,
  type JobReport,
} from './protocol.js';

const jobId = process.env.SLURM_JOB_ID ?? 'none';
const say = (line: string) => process.stdout.write(line + '\n');
/** Slurm's node name, and the host when they differ (several slurmd on one machine). */
const where = () => {
  const node = process.env.SLURMD_NODENAME;
  return node && node !== hostname() ? `${node} (host ${hostname()})` : hostname();
};

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** Cores Slurm gave this job (-c), else all of the node's that the job may use. */
function slurmCores(fallback: number): number {
  const n = Number(process.env.SLURM_CPUS_PER_TASK ?? process.env.SLURM_CPUS_ON_NODE);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

async function runJob(path: string): Promise<number> {
  const file = readJson(path);
  if (!isJobFile(file)) throw new Error(`${path} is not a facepipe job file`);
  const job = { ...file.job, cores: slurmCores(file.job.cores) };
  const started = Date.now();
  const controller = new AbortController();
  let signal: string | undefined;
  process.on('SIGTERM', () => {
    signal ??= 'SIGTERM';
    say(`# ${new Date().toISOString()} got SIGTERM: stopping the stage (its checkpoint, if any, is kept)`);
    controller.abort();
  });
  say(`# facepipe job ${jobId} on ${where()}: stage ${job.id}, attempt ${job.attempt}, key ${job.key}`);
  let lastProgress = 0;
  let lastSteps = 0;
  const outcome: JobOutcome = await executeJob(
    job,
    {
      // Progress is a live detail line: at most a few a second are worth a line in the log.
      progress: (text) => {
        const now = Date.now();
        if (now - lastProgress < 500) return;
        lastProgress = now;
        say(`${MARK}progress ${text.replace(/\n/g, ' ')}`);
      },
      // Step counts are sampled like progress; validation results always reach the log.
      report: (r) => {
        const now = Date.now();
        if (r.kind === 'steps' && now - lastSteps < 500 && r.step < r.total) return;
        if (r.kind === 'steps') lastSteps = now;
        say(`${MARK}report ${JSON.stringify(r)}`);
      },
      log: say,
      metrics: (values) => say(`${MARK}metrics ${JSON.stringify(values)}`),
    },
    controller.signal,
  );
  const report: JobReport = { v: 1, jobId, host: hostname(), started, finished: Date.now(), outcome, signal };
  writeFileAtomic(fillJobId(file.report, jobId), JSON.stringify(report));
  if (outcome.state === 'done') return 0;
  if (outcome.state === 'failed') {
    say(`# failed: ${outcome.error}`);
    if (outcome.stack && process.env.FACEPIPE_DEBUG) say(outcome.stack);
    return 1;
  }
  if (signal) {
    // Let Slurm end the job (TIMEOUT at the limit, CANCELLED after scancel's KillWait): its state is the truth.
    await new Promise((r) => setTimeout(r, 600_000));
  }
  return 143;
}

/** From a compute node: the same facepipe, the same workspace (not a look-alike), a store it can write. */
function runCanary(path: string): number {
  let file: CanaryFile | undefined;
  const checks: string[] = [];
  const check = (ok: boolean, what: string) => {
    checks.push(`${ok ? 'ok' : 'FAILED'} ${what}`);
    say(`${ok ? 'ok    ' : 'FAILED'} ${what}`);
    return ok;
  };
  say(`# facepipe canary, job ${jobId} on ${where()}: node ${process.version}, facepipe ${facepipeVersion()}`);
  try {
    const v = readJson(path);
    if (isCanaryFile(v)) file = v;
  } catch (e) {
    check(false, `read the canary file ${path}: ${(e as Error).message}`);
  }
  if (!file) {
    check(false, `the canary file ${path} is a facepipe canary file`);
    return 1;
  }
  check(
    facepipeVersion() === file.version,
    `facepipe ${facepipeVersion()} here, ${file.version} on the login node (they must be the same installation)`,
  );
  let nonce = '';
  try {
    nonce = readFileSync(file.noncePath, 'utf8').trim();
  } catch {
    /* reported below */
  }
  check(nonce === file.nonce, `this node sees the workspace ${file.workspace} (the runner's word read back)`);
  const probeDir = join(file.workspace, '.facepipe', 'tmp');
  const probe = join(probeDir, `canary-${hostname()}-${process.pid}`);
  try {
    mkdirSync(probeDir, { recursive: true });
    writeFileSync(probe, nonce);
    check(readFileSync(probe, 'utf8') === nonce, `write and read back ${probe}`);
  } catch (e) {
    check(false, `write in the workspace's .facepipe/tmp: ${(e as Error).message}`);
  } finally {
    rmSync(probe, { force: true });
  }
  const ok = checks.every((c) => c.startsWith('ok'));
  const report: CanaryReport = { v: 1, jobId, host: hostname(), ok, checks };
  try {
    writeFileAtomic(fillJobId(file.report, jobId), JSON.stringify(report));
  } catch (e) {
    say(`FAILED write the canary report: ${(e as Error).message}`);
    return 1;
  }
  return ok ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--canary' && argv[1]) return runCanary(argv[1]);
  if (argv.length === 1) return runJob(argv[0]);
  say(`usage: entry.js <job file> | entry.js --canary <canary file> (got ${JSON.stringify(argv)})`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    say(`# facepipe job side failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
