// npm run bench:slurm-poller [-- --jobs 12 --min-interval 500 --json]: the cost Slurm and facepipe's poller add
// to each tiny job, on the dev cluster (sudo scripts/dev-cluster.sh start), next to the same jobs run as local
// processes (4 at a time, the dev cluster's 4 CPUs) in the same script.
//   submit -> start: from just before sbatch (or spawn) to the job script's first line;
//   end -> noticed:  from the script's last line to the poller (or the 'exit' event) reporting it final.
// The jobs stamp their start and end with `date +%s%N`, the same wall clock this process reads.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SlurmClient } from '../src/execute/executors/slurm/client.js';
import { JobPoller } from '../src/execute/executors/slurm/poller.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const JOBS = arg('jobs', 12);
const MIN_INTERVAL = arg('min-interval', 500);
const JSON_OUT = process.argv.includes('--json');

interface Timing {
  submitToStartMs: number;
  endToNoticedMs: number;
}

const SCRIPT = '#!/bin/bash\ns=$(date +%s%N)\ne=$(date +%s%N)\necho "$s $e" > "$1/stamp.$2"\n';

function stamps(dir: string, i: number): [number, number] {
  const [s, e] = readFileSync(join(dir, `stamp.${i}`), 'utf8')
    .trim()
    .split(' ')
    .map(Number);
  return [s / 1e6, e / 1e6];
}

async function slurmRun(
  dir: string,
  script: string,
): Promise<{ timings: Timing[]; squeueCalls: number; rounds: number }> {
  const client = new SlurmClient();
  const reach = await client.reachable();
  if (!reach.ok)
    throw new Error(
      `Slurm is not reachable (${reach.error}); start the dev cluster: sudo scripts/dev-cluster.sh start`,
    );
  const name = `fp-bench-${process.pid}`;
  const poller = new JobPoller(client, { name, minIntervalMs: MIN_INTERVAL });
  const submitted: number[] = [];
  const noticed: Promise<number>[] = [];
  try {
    for (let i = 0; i < JOBS; i++) {
      submitted.push(Date.now());
      const id = await client.submit({ script, scriptArgs: [dir, String(i)], name, output: join(dir, '%j.log') });
      noticed.push(
        poller.watch(id).then((o) => {
          if (o.kind !== 'final' || o.job.state !== 'COMPLETED') throw new Error(`job ${id}: ${JSON.stringify(o)}`);
          return Date.now();
        }),
      );
    }
    const seen = await Promise.all(noticed);
    const timings = seen.map((t, i) => {
      const [start, end] = stamps(dir, i);
      return { submitToStartMs: start - submitted[i], endToNoticedMs: t - end };
    });
    return { timings, squeueCalls: poller.stats.squeueCalls, rounds: poller.stats.rounds };
  } finally {
    poller.close();
    await client.cancelByName(name);
  }
}

async function localRun(dir: string, script: string, slots: number): Promise<Timing[]> {
  const timings: Timing[] = new Array<Timing>(JOBS);
  let next = 0;
  const worker = async () => {
    while (next < JOBS) {
      const i = next++;
      const t0 = Date.now();
      const done = await new Promise<number>((resolve, reject) => {
        const child = spawn('/bin/bash', [script, dir, String(i)], { stdio: 'ignore' });
        child.on('error', reject);
        child.on('exit', () => resolve(Date.now()));
      });
      const [start, end] = stamps(dir, i);
      timings[i] = { submitToStartMs: start - t0, endToNoticedMs: done - end };
    }
  };
  await Promise.all(Array.from({ length: slots }, worker));
  return timings;
}

function summary(xs: number[]): { median: number; p90: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]);
  return { median: at(0.5), p90: at(0.9), max: Math.round(s[s.length - 1]) };
}

const dir = mkdtempSync(join(tmpdir(), 'fp-bench-slurm-'));
try {
  const script = join(dir, 'job.sh');
  writeFileSync(script, SCRIPT);
  chmodSync(script, 0o755);
  const local = await localRun(dir, script, 4);
  const slurm = await slurmRun(dir, script);
  const row = (t: Timing[]) => ({
    submitToStart: summary(t.map((x) => x.submitToStartMs)),
    endToNoticed: summary(t.map((x) => x.endToNoticedMs)),
    overheadPerJob: summary(t.map((x) => x.submitToStartMs + x.endToNoticedMs)),
  });
  const result = {
    jobs: JOBS,
    minIntervalMs: MIN_INTERVAL,
    slurm: { ...row(slurm.timings), squeueCalls: slurm.squeueCalls, rounds: slurm.rounds },
    local: row(local),
  };
  if (JSON_OUT) console.log(JSON.stringify(result, null, 2));
  else {
    const fmt = (s: { median: number; p90: number; max: number }) =>
      `median ${s.median} ms, p90 ${s.p90} ms, max ${s.max} ms`;
    console.log(`${JOBS} tiny jobs; poller min interval ${MIN_INTERVAL} ms`);
    for (const [label, r] of [
      ['slurm (dev cluster)', result.slurm],
      ['local (4 processes)', result.local],
    ] as const) {
      console.log(`${label}:`);
      console.log(`  submit -> start    ${fmt(r.submitToStart)}`);
      console.log(`  end -> noticed     ${fmt(r.endToNoticed)}`);
      console.log(`  overhead per job   ${fmt(r.overheadPerJob)}`);
    }
    console.log(`slurm: ${slurm.squeueCalls} squeue calls in ${slurm.rounds} poll rounds for ${JOBS} jobs`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
