// The poller's rules, on a scripted Slurm (what each command prints is set by the test; a clock the test moves):
// one squeue per round for any number of jobs, backing off, a missing job is never failed, a squeue outage
// fails the watches only after unreachableMs. The real-cluster side is in slurm-cluster.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SlurmClient } from '../../src/execute/executors/slurm/client.js';
import { SlurmCommandError, type SlurmExec } from '../../src/execute/executors/slurm/exec.js';
import { JobPoller, type PollOutcome } from '../../src/execute/executors/slurm/poller.js';

function scripted(answer: (file: string, args: readonly string[]) => string | Error) {
  const calls: string[] = [];
  const exec: SlurmExec = (file, args) => {
    calls.push(file);
    const a = answer(file, args);
    return a instanceof Error ? Promise.reject(a) : Promise.resolve({ stdout: a, stderr: '' });
  };
  return { calls, client: new SlurmClient({ exec, user: 'u' }) };
}

const row = (id: string, state: string, node = '', exit = '0') =>
  `${id}|${state}|None|${node}|${exit}|fp-r|(null)|/l/%j.log|\n`;
const invalidId = () =>
  new SlurmCommandError('scontrol show job', 1, {
    stdout: '',
    stderr: 'slurm_load_jobs error: Invalid job id specified\n',
  });

test('one squeue call per round for five jobs; outcomes carry state, exit code and log; backoff grows and resets', async () => {
  let queue = ['1', '2', '3', '4', '5'].map((id) => row(id, 'RUNNING', 'n1')).join('');
  const { calls, client } = scripted((file) => (file === 'squeue' ? queue : new Error(`unexpected ${file}`)));
  const poller = new JobPoller(client, { name: 'fp-r', manual: true, minIntervalMs: 100, maxIntervalMs: 400 });
  const outcomes = new Map<string, PollOutcome>();
  for (const id of ['1', '2', '3', '4', '5']) void poller.watch(id).then((o) => outcomes.set(id, o));

  await poller.poll();
  assert.deepEqual(calls, ['squeue'], 'five jobs, one call');
  const interval = () => poller.nextIntervalMs;
  assert.equal(interval(), 100, 'first sight of the jobs is a change');
  for (let i = 0; i < 4; i++) await poller.poll();
  assert.deepEqual([calls.length, interval()], [5, 400], 'nothing changed: 100 -> 150 -> 225 -> 337.5 -> capped 400');

  queue =
    row('1', 'FAILED', 'n1', '768') +
    row('2', 'CANCELLED', 'n2', '15') +
    ['3', '4', '5'].map((id) => row(id, 'COMPLETED', 'n1')).join('');
  await poller.poll();
  await new Promise((r) => setImmediate(r));
  assert.equal(calls.length, 6);
  assert.equal(interval(), 100, 'a change resets the interval');
  assert.deepEqual(poller.watching, []);
  const final = (id: string) => {
    const o = outcomes.get(id);
    assert.ok(o && o.kind === 'final', `job ${id} settled`);
    return o.job;
  };
  assert.deepEqual([final('1').state, final('1').exitCode, final('1').stdout], ['FAILED', 3, '/l/1.log']);
  assert.deepEqual([final('2').state, final('2').signal], ['CANCELLED', 15]);
  assert.equal(final('5').state, 'COMPLETED');
  await poller.poll();
  assert.equal(calls.length, 6, 'nothing watched: no call');
});

test('a job missing from squeue is looked up once, left alone for the grace period, then LOST (never FAILED)', async () => {
  let clock = 0;
  const { calls, client } = scripted((file) => {
    if (file === 'squeue') return row('8', 'RUNNING', 'n2');
    if (file === 'scontrol') return invalidId();
    if (file === 'sacct') return 'Slurm accounting storage is disabled\n';
    return new Error(file);
  });
  const poller = new JobPoller(client, { name: 'fp-r', manual: true, missingGraceMs: 60_000, now: () => clock });
  const got: { outcome?: PollOutcome } = {};
  const outcome = () => got.outcome; // read fresh: an assertion must not narrow it for later lines
  void poller.watch('9').then((o) => (got.outcome = o));
  void poller.watch('8');

  await poller.poll();
  assert.deepEqual(calls, ['squeue', 'scontrol', 'sacct'], 'first miss: squeue, then scontrol, then sacct');
  for (clock = 10_000; clock < 60_000; clock += 10_000) await poller.poll();
  assert.deepEqual(calls.slice(3), ['squeue', 'squeue', 'squeue', 'squeue', 'squeue'], 'within the grace: squeue only');
  await new Promise((r) => setImmediate(r));
  assert.equal(outcome(), undefined, 'still missing, not failed');

  clock = 61_000;
  await poller.poll();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls.slice(8), ['squeue', 'scontrol', 'sacct'], 'grace over: one last look-up');
  const lost = outcome();
  assert.ok(lost && lost.kind === 'lost');
  assert.deepEqual([lost.id, lost.missingForMs, lost.last], ['9', 61_000, undefined]);
  assert.deepEqual(poller.watching, ['8']);
});

test('a job gone from squeue but known to scontrol is settled from scontrol', async () => {
  const { calls, client } = scripted((file) =>
    file === 'squeue'
      ? ''
      : 'JobId=5 JobName=fp-r\n   JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15\n   NodeList=n1\n   StdOut=/l/5.log\n',
  );
  const poller = new JobPoller(client, { name: 'fp-r', manual: true });
  const outcome = poller.watch('5');
  await poller.poll();
  const o = await outcome;
  assert.ok(o.kind === 'final');
  assert.deepEqual(
    [o.job.state, o.job.reason, o.job.stdout, o.job.source],
    ['TIMEOUT', 'TimeLimit', '/l/5.log', 'scontrol'],
  );
  assert.deepEqual(calls, ['squeue', 'scontrol']);
});

test('squeue failing (slurmctld restarting) fails no job; only an outage past unreachableMs fails the watches', async () => {
  let clock = 0;
  let up = false;
  const errors: unknown[] = [];
  const { client } = scripted(() =>
    up ? row('3', 'COMPLETED', 'n1') : new Error('Unable to contact slurm controller'),
  );
  const poller = new JobPoller(client, {
    name: 'fp-r',
    manual: true,
    unreachableMs: 30_000,
    now: () => clock,
    onPollError: (e) => errors.push(e),
  });
  const three = poller.watch('3');
  for (; clock <= 20_000; clock += 10_000) await poller.poll();
  assert.equal(errors.length, 3);
  up = true;
  await poller.poll();
  const o = await three;
  assert.ok(o.kind === 'final' && o.job.state === 'COMPLETED');

  up = false;
  const four = poller.watch('4');
  for (clock = 100_000; clock <= 130_000; clock += 10_000) await poller.poll();
  await assert.rejects(four, /squeue has failed for 30 s: Unable to contact slurm controller/);
});
