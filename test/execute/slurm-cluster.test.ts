// The Slurm client and poller against the REAL dev cluster (scripts/dev-cluster.sh: nodes n1 and n2, one fake
// GPU each). Without the cluster every test here fails, naming the script that starts it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SlurmCommandError } from '../../src/execute/executors/slurm/exec.js';
import { JobPoller, type PollOutcome } from '../../src/execute/executors/slurm/poller.js';
import type { JobSnapshot } from '../../src/execute/executors/slurm/types.js';
import { countingExec, devCluster, jobFolder, PARTITION, tag } from './slurm-rig.js';

const LIMIT = { timeout: 120_000 };

function final(o: PollOutcome): JobSnapshot {
  assert.equal(o.kind, 'final', `expected a final state, got ${JSON.stringify(o)}`);
  return o.job;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test(
  'the dev cluster: partition dev with n1 and n2, one fake GPU each; sacct reports accounting disabled',
  LIMIT,
  async () => {
    const client = await devCluster();
    const info = await client.info();
    const dev = info.partitions.find((p) => p.name === PARTITION)!;
    assert.equal(dev.isDefault, true);
    assert.deepEqual(dev.gres, ['gpu:fake:1']);
    assert.match(info.version, /^\d+\.\d+/);
    assert.equal(
      await client.accounting(['1']),
      'disabled',
      'facepipe must work without accounting; the dev cluster has none',
    );
  },
);

test(
  'a job exiting 3 is FAILED with exit code 3 and its log; exit 0 is COMPLETED; scontrol agrees',
  LIMIT,
  async () => {
    const client = await devCluster();
    const name = tag('exit');
    const job = jobFolder('echo "hello from $SLURMD_NODENAME job $SLURM_JOB_ID"\nexit "$1"');
    const poller = new JobPoller(client, { name, minIntervalMs: 200 });
    try {
      const output = join(job.dir, '%x.%j.log');
      const three = await client.submit({ script: job.script, scriptArgs: ['3'], name, output, partition: PARTITION });
      const zero = await client.submit({ script: job.script, scriptArgs: ['0'], name, output });
      const [failed, done] = (await Promise.all([poller.watch(three), poller.watch(zero)])).map(final);

      assert.deepEqual([failed.state, failed.exitCode, failed.signal], ['FAILED', 3, undefined]);
      assert.deepEqual([done.state, done.exitCode], ['COMPLETED', 0]);
      assert.equal(failed.stdout, join(job.dir, `${name}.${three}.log`));
      assert.ok(existsSync(failed.stdout), 'the log exists where the poller says');
      assert.match(readFileSync(failed.stdout, 'utf8'), new RegExp(`hello from n[12] job ${three}`));
      const shown = await client.showJob(three);
      assert.deepEqual([shown?.state, shown?.exitCode, shown?.stdout], ['FAILED', 3, failed.stdout]);
    } finally {
      poller.close();
      await client.cancelByName(name);
      job.remove();
    }
  },
);

/** The log once it matches `re`, or as it is after `ms`. */
async function logOnceMatching(path: string, re: RegExp, ms: number): Promise<string> {
  let log = readFileSync(path, 'utf8');
  for (let waited = 0; !re.test(log) && waited < ms; waited += 100) {
    await sleep(100);
    log = readFileSync(path, 'utf8');
  }
  return log;
}

/** Until each job's log says 'started': RUNNING alone does not mean the script has set its trap yet. */
async function waitStarted(dir: string, ids: string[]): Promise<void> {
  const started = (id: string) =>
    existsSync(join(dir, `${id}.log`)) && readFileSync(join(dir, `${id}.log`), 'utf8').includes('started');
  for (let i = 0; i < 300 && !ids.every(started); i++) await sleep(100);
  assert.deepEqual(
    ids.map(started),
    ids.map(() => true),
    'every job has started',
  );
}

test(
  'scancel by the run tag: its jobs end CANCELLED after their TERM trap ran; another run is untouched',
  LIMIT,
  async () => {
    const client = await devCluster();
    const [mine, other] = [tag('cancel'), tag('other')];
    const job = jobFolder('trap \'echo "got TERM"; exit 143\' TERM\necho started\nsleep 120 &\nwait');
    const pm = new JobPoller(client, { name: mine, minIntervalMs: 200 });
    const po = new JobPoller(client, { name: other, minIntervalMs: 200 });
    try {
      const output = join(job.dir, '%j.log');
      const ids = [
        await client.submit({ script: job.script, name: mine, output }),
        await client.submit({ script: job.script, name: mine, output }),
      ];
      const otherId = await client.submit({ script: job.script, name: other, output });
      const outcomes = ids.map((id) => pm.watch(id));
      const otherOutcome = po.watch(otherId);
      await waitStarted(job.dir, [...ids, otherId]);

      await client.cancelByName(mine);
      for (const o of await Promise.all(outcomes)) {
        const j = final(o);
        assert.equal(j.state, 'CANCELLED');
        // Slurm marks the job CANCELLED as it signals it; the trap's line may land a moment later (KillWait is 5 s).
        const log = await logOnceMatching(j.stdout!, /^got TERM$/m, 8000);
        assert.match(log, /^started\n[^]*^got TERM$/m, 'the job saw TERM before it was killed');
        assert.match(log, new RegExp(`\\*\\*\\* JOB ${j.id} ON n[12] CANCELLED AT `), "slurmstepd's note in the log");
      }
      const still = (await client.queue(other)).get(otherId);
      assert.equal(still?.state, 'RUNNING', "the other run's job is not cancelled");
      await client.cancel([otherId]);
      assert.equal(final(await otherOutcome).state, 'CANCELLED');
    } finally {
      pm.close();
      po.close();
      await client.cancelByName(mine);
      await client.cancelByName(other);
      job.remove();
    }
  },
);

test('two jobs at once land on the two nodes (each waits until both have started)', LIMIT, async () => {
  const client = await devCluster();
  const name = tag('nodes');
  const job = jobFolder(
    [
      'touch "$1/started.$SLURM_JOB_ID"',
      'for i in $(seq 300); do [ "$(ls "$1" | grep -c ^started)" -ge 2 ] && break; sleep 0.1; done',
      'echo "node=$SLURMD_NODENAME both=$(ls "$1" | grep -c ^started)"',
      '[ "$(ls "$1" | grep -c ^started)" -ge 2 ]',
    ].join('\n'),
  );
  const poller = new JobPoller(client, { name, minIntervalMs: 200 });
  try {
    // --exclusive: a node holds one such job, so Slurm cannot pack both onto one node.
    const output = join(job.dir, '%j.log');
    const submit = () =>
      client.submit({ script: job.script, scriptArgs: [job.dir], name, output, extra: ['--exclusive'] });
    const ids = [await submit(), await submit()];
    const jobs = (await Promise.all(ids.map((id) => poller.watch(id)))).map(final);
    for (const j of jobs) {
      assert.deepEqual([j.state, j.exitCode], ['COMPLETED', 0], readFileSync(j.stdout!, 'utf8'));
      assert.match(readFileSync(j.stdout!, 'utf8'), new RegExp(`node=${j.node} both=2`));
    }
    assert.deepEqual(jobs.map((j) => j.node).sort(), ['n1', 'n2']);
  } finally {
    poller.close();
    await client.cancelByName(name);
    job.remove();
  }
});

test('a --gres=gpu:1 job sees CUDA_VISIBLE_DEVICES; a job without GPUs does not', LIMIT, async () => {
  const client = await devCluster();
  const name = tag('gpu');
  const job = jobFolder('echo "cuda=${CUDA_VISIBLE_DEVICES-unset} gpus=${SLURM_JOB_GPUS-unset}"');
  const poller = new JobPoller(client, { name, minIntervalMs: 200 });
  try {
    const output = join(job.dir, '%j.log');
    const withGpu = await client.submit({ script: job.script, name, output, gpus: 1 });
    const without = await client.submit({ script: job.script, name, output });
    const [g, c] = (await Promise.all([poller.watch(withGpu), poller.watch(without)])).map(final);
    assert.equal(g.state, 'COMPLETED');
    assert.match(readFileSync(g.stdout!, 'utf8'), /^cuda=0 gpus=0$/m);
    assert.match(readFileSync(c.stdout!, 'utf8'), /^cuda=unset gpus=unset$/m);
    await assert.rejects(
      client.submit({ script: job.script, name, output, gpus: 2 }),
      (e: unknown) =>
        e instanceof SlurmCommandError &&
        /^sbatch .* failed \(exit status 1\): .*Requested node configuration is not available/.test(e.message),
      'no node has two GPUs: sbatch refuses, and the error says why',
    );
  } finally {
    poller.close();
    await client.cancelByName(name);
    job.remove();
  }
});

test(
  'one poll of four jobs is one squeue call; no job costs a call of its own until all are final',
  LIMIT,
  async () => {
    const { exec, calls } = countingExec();
    const client = await devCluster({ exec });
    const name = tag('bulk');
    const job = jobFolder('sleep 1');
    const poller = new JobPoller(client, { name, manual: true, minIntervalMs: 200 });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++)
        ids.push(await client.submit({ script: job.script, name, output: join(job.dir, '%j.log') }));
      const outcomes = Promise.all(ids.map((id) => poller.watch(id)));
      const before = calls.length;
      await poller.poll();
      assert.equal(calls.length - before, 1, 'one round, one command');
      assert.equal(calls[before][0], 'squeue');
      assert.ok(calls[before].includes(`--name=${name}`), 'selected by the run tag');
      for (const id of ids) assert.ok(poller.last(id), `job ${id} seen in that one call`);

      for (let i = 0; i < 200 && poller.watching.length; i++) {
        await sleep(poller.nextIntervalMs);
        await poller.poll();
      }
      const jobs = (await outcomes).map(final);
      assert.deepEqual(
        jobs.map((j) => j.state),
        ['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED'],
      );
      const after = calls.slice(before).map((c) => c[0]);
      assert.deepEqual([...new Set(after)], ['squeue'], 'no scontrol or sacct: squeue --states=all saw every end');
      assert.equal(after.length, poller.stats.rounds);
    } finally {
      poller.close();
      await client.cancelByName(name);
      job.remove();
    }
  },
);

test('a job slurmctld does not know is missing, then LOST after the grace period, never FAILED', LIMIT, async () => {
  const { exec, calls } = countingExec();
  const client = await devCluster({ exec });
  const poller = new JobPoller(client, { name: tag('lost'), manual: true, missingGraceMs: 0 });
  const ghost = '67000000';
  assert.equal(await client.showJob(ghost), undefined, "scontrol's 'Invalid job id' means: not known");
  const got: { outcome?: PollOutcome } = {};
  const outcome = () => got.outcome; // read fresh: an assertion must not narrow it for later lines
  void poller.watch(ghost).then((o) => (got.outcome = o));
  const before = calls.length;
  await poller.poll();
  await sleep(0);
  assert.equal(outcome(), undefined, 'first miss: still waiting');
  assert.deepEqual(
    calls.slice(before).map((c) => c[0]),
    ['squeue', 'scontrol', 'sacct'],
  );
  await poller.poll();
  await sleep(0);
  const o = outcome();
  assert.deepEqual(o && [o.kind, 'id' in o ? o.id : ''], ['lost', ghost]);
});
