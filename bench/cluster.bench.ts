// npm run bench:cluster [-- --points 12 --slurm-jobs 4 --json]: a tiny sweep (configs/tiny.yaml, N points of
// triarchy.seed) run by `facepipe run --executor local --jobs 2` and by `--executor slurm` on the dev cluster
// (sudo scripts/dev-cluster.sh start), each in a fresh workspace, in this one script. Printed per job:
//   overhead: the runner's time for a stage minus the job side's own (its record's durationMs): forking a
//     worker locally; sbatch, scheduling, starting node on the node, noticing the end on Slurm;
//   Slurm only, from the ledger and the jobs' reports: submit -> start (sbatch returned -> the job side
//     started) and end -> noticed (the job side finished -> the runner saw it end).
// --slurm-jobs caps the jobs queued at once (default 4, the dev cluster's CPUs), so that no job waits for a free
// CPU and submit -> start is overhead, not queueing. The first jobs also wait for the canary. Goal: <= 2 s a job.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/core/package-root.js';
import { SlurmClient } from '../src/execute/executors/slurm/client.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const POINTS = arg('points', 12);
const SLURM_JOBS = arg('slurm-jobs', 4);
const JSON_OUT = process.argv.includes('--json');
const GOAL_MS = 2000;
const CLI = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');

interface Summary {
  n: number;
  medianMs: number;
  p90Ms: number;
  maxMs: number;
}

function summary(values: number[]): Summary {
  const v = [...values].sort((a, b) => a - b);
  const at = (q: number) => v[Math.min(v.length - 1, Math.floor(q * v.length))] ?? NaN;
  return { n: v.length, medianMs: at(0.5), p90Ms: at(0.9), maxMs: v.at(-1) ?? NaN };
}

function workspace(): string {
  const ws = mkdtempSync(join(tmpdir(), 'facepipe-bench-cluster-'));
  for (const d of ['pipelines', 'configs', 'data/cmu-faces'])
    cpSync(join(packageRoot(), d), join(ws, d), { recursive: true });
  return ws;
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** Runner-side minus job-side duration of every stage that ran. */
function overheads(ws: string): number[] {
  const runs = readdirSync(join(ws, 'results/runs'));
  const rec = readJson<{ stages: Array<{ state: string; key?: string; durationMs: number }> }>(
    join(ws, 'results/runs', runs[0], 'run.json'),
  );
  const seen = new Set<string>();
  const out: number[] = [];
  for (const s of rec.stages) {
    if (s.state !== 'done' || !s.key || seen.has(s.key)) continue;
    seen.add(s.key);
    const job = readJson<{ durationMs: number }>(join(ws, '.facepipe/store/stages', `${s.key}.json`));
    out.push(s.durationMs - job.durationMs);
  }
  return out;
}

function run(ws: string, extra: string[]): { wallMs: number; jobs: number } {
  const sweep = `triarchy.seed=${Array.from({ length: POINTS }, (_, i) => i).join(',')}`;
  const args = [CLI, 'run', '--config', 'configs/tiny.yaml', '--backend', 'wasm', '--progress', 'json'];
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [...args, '--sweep', sweep, ...extra], {
    cwd: ws,
    encoding: 'utf8',
    env: { ...process.env, CI: '1' },
    maxBuffer: 256 * 1024 * 1024,
  });
  const wallMs = Date.now() - t0;
  if (r.status !== 0) throw new Error(`facepipe run ${extra.join(' ')} failed (exit ${r.status}):\n${r.stderr}`);
  return { wallMs, jobs: overheads(ws).length };
}

/** submit -> start and end -> noticed of each Slurm job, from the ledger and the jobs' own reports. */
function slurmTimings(ws: string): { submitToStart: number[]; endToNoticed: number[] } {
  const root = join(ws, '.facepipe/slurm');
  const submitToStart: number[] = [];
  const endToNoticed: number[] = [];
  for (const run of readdirSync(root)) {
    const lines = readFileSync(join(root, run, 'jobs.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { event: string; id: string; at: number; report?: string });
    const subs = new Map(lines.filter((l) => l.event === 'submitted').map((l) => [l.id, l]));
    for (const end of lines.filter((l) => l.event === 'ended')) {
      const sub = subs.get(end.id);
      if (!sub?.report || !existsSync(sub.report)) continue;
      const rep = readJson<{ started: number; finished: number }>(sub.report);
      submitToStart.push(rep.started - sub.at);
      endToNoticed.push(end.at - rep.finished);
    }
  }
  return { submitToStart, endToNoticed };
}

async function main(): Promise<void> {
  const reach = await new SlurmClient().reachable();
  if (!reach.ok)
    throw new Error(`Slurm is not reachable (${reach.error}); start it: sudo scripts/dev-cluster.sh start`);
  const wsLocal = workspace();
  const wsSlurm = workspace();
  try {
    const local = run(wsLocal, ['--executor', 'local', '--jobs', '2']);
    const localOverhead = summary(overheads(wsLocal));
    const slurm = run(wsSlurm, ['--executor', 'slurm', '--jobs', String(SLURM_JOBS)]);
    const slurmOverhead = summary(overheads(wsSlurm));
    const t = slurmTimings(wsSlurm);
    const s2s = summary(t.submitToStart);
    const e2n = summary(t.endToNoticed);
    const perJob = s2s.medianMs + e2n.medianMs;
    const result = {
      points: POINTS,
      jobs: slurm.jobs,
      local: { wallMs: local.wallMs, jobs: '--jobs 2', overhead: localOverhead },
      slurm: {
        wallMs: slurm.wallMs,
        jobsAtOnce: SLURM_JOBS,
        overhead: slurmOverhead,
        submitToStart: s2s,
        endToNoticed: e2n,
      },
      goalMs: GOAL_MS,
      goalMet: perJob <= GOAL_MS,
    };
    if (JSON_OUT) {
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      return;
    }
    const ms = (x: Summary) =>
      `median ${(x.medianMs / 1000).toFixed(2)} s, p90 ${(x.p90Ms / 1000).toFixed(2)} s, max ${(x.maxMs / 1000).toFixed(2)} s`;
    process.stdout.write(
      [
        `tiny sweep, ${POINTS} points, ${slurm.jobs} stage jobs (split and pretext shared)`,
        `--executor local --jobs 2   wall ${(local.wallMs / 1000).toFixed(1)} s; overhead per job ${ms(localOverhead)}`,
        `--executor slurm (${SLURM_JOBS} at once) wall ${(slurm.wallMs / 1000).toFixed(1)} s; overhead per job ${ms(slurmOverhead)}`,
        `  submit -> start   ${ms(s2s)}`,
        `  end -> noticed    ${ms(e2n)}`,
        `  per job (medians) ${(perJob / 1000).toFixed(2)} s (goal <= ${GOAL_MS / 1000} s: ${result.goalMet ? 'met' : 'NOT met'})`,
        '',
      ].join('\n'),
    );
  } finally {
    rmSync(wsLocal, { recursive: true, force: true });
    rmSync(wsSlurm, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
