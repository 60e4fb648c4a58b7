// Slow Slurm cases, kept out of `npm test` (Slurm's time limits are in minutes): run them with
//   npm run test:slow          (needs the dev cluster: sudo scripts/dev-cluster.sh start; about 3 minutes)
// - a job that hits its time limit is reported TIMEOUT with its log, after the warning signal stopped the stage
//   (--signal=B:TERM@60), and the retry continues from the stage's scratch folder, which survived;
// - a node that fails under a running job (its slurmd and the job's processes killed, slurmd restarted) gives
//   NODE_FAIL (facepipe submits with --no-requeue, so Slurm does not requeue it), and facepipe's retry passes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  finalStates,
  makeWorkspace,
  removeWorkspace,
  repoRoot,
  runCli,
  startCli,
  waitFor,
} from '../test/engine/rig.js';
import { devCluster } from '../test/execute/slurm-rig.js';

const LIMIT = { timeout: 900_000 };
const CLUSTER_DIR = process.env.FACEPIPE_CLUSTER_DIR ?? '/var/lib/facepipe-dev-cluster';

interface Line {
  event: string;
  id: string;
  stage?: string;
  state?: string;
  log?: string;
}

function ledger(ws: string): Line[] {
  const root = join(ws, '.facepipe/slurm');
  return readdirSync(root).flatMap((r) =>
    existsSync(join(root, r, 'jobs.jsonl'))
      ? readFileSync(join(root, r, 'jobs.jsonl'), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Line)
      : [],
  );
}

function runLog(ws: string, stage: string): string {
  const runs = readdirSync(join(ws, 'results/runs')).sort();
  return readFileSync(join(ws, 'results/runs', runs.at(-1)!, 'logs', `${stage}.log`), 'utf8');
}

/** A stage that finishes on its second attempt, counting attempts in its scratch folder (which must survive). */
const SECOND_TRY = `cmd: 'echo try >> "$FACEPIPE_WORK_DIR/tries"; if [ "$(wc -l < "$FACEPIPE_WORK_DIR/tries")" -ge 2 ]; then echo done > {outputs.o}; exit 0; fi; touch started; sleep 600'`;

test(
  'TIMEOUT: reported with the log path after the warning signal; the retry resumes from the scratch folder',
  LIMIT,
  async () => {
    await devCluster();
    const ws = makeWorkspace({
      'pipelines/p.yaml': `name: p
stages:
  slow:
    kind: command
    retries: 1
    resources: { time: 1 }
    params:
      ${SECOND_TRY}
      outputs: { o: file }
`,
    });
    try {
      const r = await runCli(ws, ['run', 'pipelines/p.yaml', '--progress', 'json', '--executor', 'slurm'], 600_000);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(finalStates(r.events), { slow: 'done' });
      const ends = ledger(ws).filter((l) => l.event === 'ended');
      assert.equal(ends[0].state, 'TIMEOUT');
      const first = ledger(ws).find((l) => l.event === 'submitted')!;
      assert.match(
        readFileSync(first.log!, 'utf8'),
        /got SIGTERM: stopping the stage/,
        'the warning signal reached node',
      );
      assert.match(
        runLog(ws, 'slow'),
        /# attempt 1 of 2 failed: Slurm job \d+ hit its time limit on n[12] \(resources.time: 1\)/,
      );
      assert.match(runLog(ws, 'slow'), /log: \.facepipe\/slurm\/[^/]+\/slow\.\d+\.log/);
    } finally {
      removeWorkspace(ws);
    }
  },
);

/** Kill a node's slurmd, the job's slurmstepd and every process of the job (a node failure, as far as Slurm sees). */
function failNode(node: string, jobId: string): void {
  const pid = (f: string) => Number(readFileSync(f, 'utf8').trim());
  const victims = [pid(join(CLUSTER_DIR, 'run', `slurmd-${node}.pid`))];
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const env = readFileSync(`/proc/${d}/environ`, 'utf8');
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (env.includes(`SLURM_JOB_ID=${jobId}\0`) || (cmd.startsWith('slurmstepd') && cmd.includes(`[${jobId}.`)))
        victims.push(Number(d));
    } catch {
      /* gone */
    }
  }
  for (const p of victims) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

test(
  'NODE_FAIL under a running job: not requeued by Slurm, retried by facepipe, and the retry passes',
  LIMIT,
  async () => {
    await devCluster();
    const ws = makeWorkspace({
      'pipelines/p.yaml': `name: p
stages:
  victim:
    kind: command
    retries: 1
    params:
      ${SECOND_TRY}
      outputs: { o: file }
`,
    });
    const run = startCli(ws, ['run', 'pipelines/p.yaml', '--progress', 'json', '--executor', 'slurm']);
    try {
      await waitFor(() => existsSync(join(ws, 'started')), 120_000, 'the job to start');
      const job = ledger(ws).find((l) => l.event === 'submitted')!;
      const node = /on (n[12])/.exec(readFileSync(job.log!, 'utf8'))![1];
      failNode(node, job.id);
      execFileSync(join(repoRoot(), 'scripts/dev-cluster.sh'), ['start'], { stdio: 'ignore' });
      const r = await run.done;
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(finalStates(r.events), { victim: 'done' });
      const ends = ledger(ws).filter((l) => l.event === 'ended');
      assert.equal(ends[0].state, 'NODE_FAIL', JSON.stringify(ends));
      assert.match(
        runLog(ws, 'victim'),
        new RegExp(`# attempt 1 of 2 failed: the node running Slurm job ${job.id} failed`),
      );
    } finally {
      run.child.kill('SIGKILL');
      const runs = existsSync(join(ws, '.facepipe/slurm')) ? readdirSync(join(ws, '.facepipe/slurm')) : [];
      for (const r of runs) execFileSync('scancel', [`--name=fp-${r}`]);
      removeWorkspace(ws);
    }
  },
);
