// The Slurm client's parsers on text its commands printed (Slurm 22.05.8, the dev cluster of
// scripts/dev-cluster.sh), and sbatch's command line. Pure: no cluster needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FacepipeError } from '../../src/core/errors.js';
import {
  accountingDisabled,
  decodeWaitStatus,
  expandLogPath,
  normalizeState,
  parseExitPair,
  parseSacct,
  parseSbatchParsable,
  parseScontrolJob,
  parseSinfo,
  parseSqueue,
} from '../../src/execute/executors/slurm/parse.js';
import { sbatchArgs, splitExtra } from '../../src/execute/executors/slurm/sbatch-args.js';

// squeue --noheader --states=all --name=... --Format=<SQUEUE_FORMAT>, captured at three moments; the last row's
// log path was edited to hold a '|'.
const SQUEUE = `6|PENDING|Resources||0|fp-fx|3f2a9c|/tmp/sl/%x-%j.log|
7|PENDING|Priority||0|fp-fx|(null)|/tmp/sl/%x-%j.log|
4|RUNNING|None|n1|0|fp-fx|(null)|/tmp/sl/%x-%j.log|
5|CANCELLED|None|n2|15|fp-fx|(null)|/tmp/sl/%x-%j.log|
1|FAILED|NonZeroExitCode|n1|768|fp-t1|(null)|/tmp/sl/%j.log|
2|COMPLETED|None|n1|0|fp-t1|(null)|/tmp/sl/%j.log|
3|FAILED|JobLaunchFailure|n1|9|fp-long name|(null)|/tmp/a|b/%j.log|
`;

const SCONTROL_FAILED = `JobId=1 JobName=fp-t1
   UserId=root(0) GroupId=root(0) MCS_label=N/A
   Priority=4294901759 Nice=0 Account=(null) QOS=(null)
   JobState=FAILED Reason=NonZeroExitCode Dependency=(null)
   Requeue=0 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0
   RunTime=00:00:02 TimeLimit=UNLIMITED TimeMin=N/A
   SubmitTime=2026-12-01T22:34:41 EligibleTime=2026-12-01T22:34:41
   StartTime=2026-12-01T22:34:42 EndTime=2026-12-01T22:34:44 Deadline=N/A
   Partition=dev AllocNode:Sid=localhost:16824
   ReqNodeList=(null) ExcNodeList=(null)
   NodeList=n1
   BatchHost=n1
   NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:*
   TRES=cpu=1,mem=1000M,node=1,billing=1
   Command=/tmp/sl/j.sh 2 3
   WorkDir=/tmp/my work
   StdErr=/tmp/my work/1.log
   StdIn=/dev/null
   StdOut=/tmp/my work/1.log
   Power=

`;

const SCONTROL_PENDING = `JobId=6 JobName=fp-fx
   JobState=PENDING Reason=Resources Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0
   NodeList=
   Command=(null)
   StdOut=/tmp/sl/fp-fx-6.log
   TresPerNode=gres:gpu:1
`;

const SCONTROL_CANCELLED = `JobId=4 JobName=fp-fx
   JobState=CANCELLED Reason=None Dependency=(null)
   Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:15
   NodeList=n1
   StdOut=/tmp/sl/fp-fx-4.log
`;

test('squeue rows: state, reason, node, exit status decoded only once final, log path expanded', () => {
  const rows = new Map(parseSqueue(SQUEUE).map((j) => [j.id, j]));
  assert.equal(rows.size, 7);
  assert.deepEqual(rows.get('6'), {
    id: '6',
    state: 'PENDING',
    rawState: 'PENDING',
    reason: 'Resources',
    name: 'fp-fx',
    comment: '3f2a9c',
    stdout: '/tmp/sl/fp-fx-6.log',
    source: 'squeue',
  });
  assert.equal(rows.get('7')!.comment, undefined, "'(null)' is no comment");
  const running = rows.get('4')!;
  assert.equal(running.state, 'RUNNING');
  assert.equal(running.node, 'n1');
  assert.equal(running.reason, undefined, "'None' is no reason");
  assert.equal(running.exitCode, undefined, 'no exit code while running');
  assert.deepEqual([rows.get('1')!.state, rows.get('1')!.exitCode, rows.get('1')!.signal], ['FAILED', 3, undefined]);
  assert.deepEqual([rows.get('2')!.state, rows.get('2')!.exitCode], ['COMPLETED', 0]);
  assert.deepEqual([rows.get('5')!.state, rows.get('5')!.signal], ['CANCELLED', 15]);
  const killed = rows.get('3')!;
  assert.deepEqual([killed.signal, killed.reason, killed.name], [9, 'JobLaunchFailure', 'fp-long name']);
  assert.equal(killed.stdout, '/tmp/a|b/3.log', "a '|' in the last field (the log path) survives");
  assert.deepEqual(parseSqueue(''), []);
  assert.throws(() => parseSqueue('12|RUNNING|None\n'), /unexpected squeue line/);
  assert.throws(
    () => parseSqueue('12|RUNNING|None|n1|0|fp-x|/l/%j.log|\n'),
    /unexpected squeue line/,
    'no Comment field',
  );
});

test('scontrol show job: final state with exit code and log path (spaces kept); pending; cancelled', () => {
  const failed = parseScontrolJob(SCONTROL_FAILED)!;
  assert.deepEqual(failed, {
    id: '1',
    state: 'FAILED',
    rawState: 'FAILED',
    reason: 'NonZeroExitCode',
    node: 'n1',
    name: 'fp-t1',
    stdout: '/tmp/my work/1.log',
    exitCode: 3,
    source: 'scontrol',
  });
  const pending = parseScontrolJob(SCONTROL_PENDING)!;
  assert.deepEqual(
    [pending.state, pending.reason, pending.node, pending.exitCode],
    ['PENDING', 'Resources', undefined, undefined],
  );
  const cancelled = parseScontrolJob(SCONTROL_CANCELLED)!;
  assert.deepEqual([cancelled.state, cancelled.exitCode, cancelled.signal], ['CANCELLED', 0, 15]);
  assert.equal(parseScontrolJob(''), undefined);
  assert.equal(parseScontrolJob('slurm_load_jobs error: Invalid job id specified\n'), undefined);
});

test('sacct: "accounting storage is disabled" is recognised; parsable2 rows skip steps', () => {
  assert.ok(accountingDisabled('Slurm accounting storage is disabled\n'));
  assert.ok(!accountingDisabled('12|COMPLETED|0:0|n1|fp-x\n'));
  // sacct --noheader --parsable2 --allocations --format=JobID,State,ExitCode,NodeList,JobName (Slurm's layout).
  const rows = parseSacct(
    '12|CANCELLED by 0|0:15|n2|fp-x\n12.batch|CANCELLED|0:15|n2|batch\n13|PENDING|0:0|None assigned|fp-x\n14|OUT_OF_MEMORY|0:125|n1|fp-x\n',
  );
  assert.deepEqual(
    rows.map((j) => [j.id, j.state, j.exitCode, j.signal, j.node]),
    [
      ['12', 'CANCELLED', 0, 15, 'n2'],
      ['13', 'PENDING', undefined, undefined, undefined],
      ['14', 'OUT_OF_MEMORY', 0, 125, 'n1'],
    ],
  );
});

test('sinfo: partitions with default mark, availability, node count over states, gres; version', () => {
  const info = parseSinfo(
    'dev*|up|1|idle|gpu:fake:1\ndev*|up|1|mixed|gpu:fake:1\ncpu|down|4|down*|(null)\n',
    'slurm-wlm 22.05.8\n',
  );
  assert.equal(info.version, '22.05.8');
  assert.deepEqual(info.partitions, [
    { name: 'dev', isDefault: true, available: true, nodes: 2, states: ['idle', 'mixed'], gres: ['gpu:fake:1'] },
    { name: 'cpu', isDefault: false, available: false, nodes: 4, states: ['down*'], gres: [] },
  ]);
});

test('small parsers: sbatch --parsable, states, exit pairs, wait statuses, log patterns', () => {
  assert.equal(parseSbatchParsable('42\n'), '42');
  assert.equal(parseSbatchParsable('42;fpdev\n'), '42');
  assert.throws(() => parseSbatchParsable('sbatch: error: Batch job submission failed\n'), /no job id/);
  assert.equal(normalizeState('CANCELLED by 1000'), 'CANCELLED');
  assert.equal(normalizeState('CANCELLED+'), 'CANCELLED');
  assert.equal(normalizeState('NODE_FAIL'), 'NODE_FAIL');
  assert.equal(normalizeState('WHATEVER'), 'UNKNOWN');
  assert.deepEqual(parseExitPair('3:0'), { exitCode: 3 });
  assert.deepEqual(parseExitPair('0:9'), { exitCode: 0, signal: 9 });
  assert.equal(parseExitPair('x'), undefined);
  assert.deepEqual(decodeWaitStatus(768), { exitCode: 3 });
  assert.deepEqual(decodeWaitStatus(0), { exitCode: 0 });
  assert.deepEqual(decodeWaitStatus(137), { exitCode: 0, signal: 9 });
  assert.equal(expandLogPath('/l/%x.%j.%N.%a%%', { id: '7', name: 'fp-r', node: 'n2' }), '/l/fp-r.7.n2.%a%');
});

test('sbatch command line: every setting maps to its flag, extra flags come last, bad values are refused', () => {
  const args = sbatchArgs({
    script: '/ws/.facepipe/slurm/job.sh',
    scriptArgs: ['a b'],
    name: 'fp-run1',
    output: '/ws/.facepipe/slurm/run1/train.%j.log',
    partition: 'gpu',
    account: 'lab',
    qos: 'short',
    gpus: 1,
    cpus: 4,
    mem: '16G',
    time: '1:30:00',
    chdir: '/ws',
    comment: 'ab12',
    afterOk: '41',
    extra: '--constraint=a100 --exclusive',
  });
  assert.deepEqual(args, [
    '--parsable',
    '--job-name=fp-run1',
    '--output=/ws/.facepipe/slurm/run1/train.%j.log',
    '--no-requeue',
    '--signal=B:TERM@60',
    '--partition=gpu',
    '--account=lab',
    '--qos=short',
    '--gres=gpu:1',
    '--cpus-per-task=4',
    '--mem=16G',
    '--time=1:30:00',
    '--chdir=/ws',
    '--comment=ab12',
    '--dependency=afterok:41',
    '--kill-on-invalid-dep=yes',
    '--constraint=a100',
    '--exclusive',
    '/ws/.facepipe/slurm/job.sh',
    'a b',
  ]);
  const plain = sbatchArgs({
    script: 's.sh',
    name: 'fp-x',
    output: 'o.log',
    gpus: 0,
    signal: false,
    time: 90,
    mem: 512,
  });
  assert.deepEqual(plain, [
    '--parsable',
    '--job-name=fp-x',
    '--output=o.log',
    '--no-requeue',
    '--mem=512',
    '--time=90',
    's.sh',
  ]);
  const refused = (o: Partial<Parameters<typeof sbatchArgs>[0]>, re: RegExp) =>
    assert.throws(
      () => sbatchArgs({ script: 's.sh', name: 'fp-x', output: 'o.log', ...o }),
      (e: unknown) => e instanceof FacepipeError && e.exitCode === 2 && re.test(e.message),
    );
  refused({ gpus: 1.5 }, /gpus must be a whole number/);
  refused({ cpus: 0 }, /cpus must be a whole number >= 1/);
  refused({ mem: '4 GB' }, /not a Slurm memory size/);
  refused({ time: '1h' }, /not a Slurm time limit/);
  refused({ time: 0 }, /not a Slurm time limit/);
  refused({ name: ' ' }, /is empty or holds characters/);
  refused({ name: 'fp-a,fp-b' }, /is empty or holds characters/);
  refused({ comment: 'a b' }, /is not a plain word/);
  refused({ afterOk: '1;2' }, /is not a job id/);
  assert.deepEqual(splitExtra(['--comment=a b']), ['--comment=a b']);
  assert.throws(
    () => splitExtra('--comment="a b"'),
    (e: unknown) =>
      e instanceof FacepipeError && /contain quotes/.test(e.message) && /as a list/.test(e.diagnostics[0].hint ?? ''),
  );
});
