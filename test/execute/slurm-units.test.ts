// The Slurm executor's own rules on a scripted Slurm (no cluster): which jobs of an interrupted run are adopted
// (Slurm's tag and key, checked against the ledger), how an end without a record is worded (state, log path,
// log tail), how a growing log turns back into events; and the leases that keep gc away from live jobs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { findAdoptable } from '../../src/execute/executors/slurm/adopt.js';
import { SlurmClient } from '../../src/execute/executors/slurm/client.js';
import type { SlurmExec } from '../../src/execute/executors/slurm/exec.js';
import { appendLedger, closeRun, openRuns, tagOf } from '../../src/execute/executors/slurm/ledger.js';
import { LogFollower } from '../../src/execute/executors/slurm/log-follow.js';
import { MARK } from '../../src/execute/executors/slurm/protocol.js';
import { describeEnd } from '../../src/execute/executors/slurm/report.js';
import type { JobSnapshot } from '../../src/execute/executors/slurm/types.js';
import { liveLeases, STALE_MS, takeLease } from '../../src/execute/leases.js';
import { collectGarbage } from '../../src/execute/store/gc.js';
import { Workspace } from '../../src/execute/workspace.js';
import { makeWorkspace, removeWorkspace } from '../engine/rig.js';

const K = (c: string) => c.repeat(64);

function scripted(squeue: string): { client: SlurmClient; calls: string[][] } {
  const calls: string[][] = [];
  const exec: SlurmExec = (file, args) => {
    calls.push([file, ...args]);
    return file === 'squeue'
      ? Promise.resolve({ stdout: squeue, stderr: '' })
      : Promise.reject(new Error(`unexpected ${file}`));
  };
  return { client: new SlurmClient({ exec, user: 'u' }), calls };
}

const row = (id: string, state: string, name: string, comment: string) =>
  `${id}|${state}|None|n1|0|${name}|${comment}|/l/${id}.log|\n`;

test('adoption: only live jobs under a recorded run tag whose key (comment) agrees with the ledger', async () => {
  const ws = makeWorkspace();
  try {
    const r1 = join(ws, '.facepipe/slurm/R1');
    const r2 = join(ws, '.facepipe/slurm/R2');
    mkdirSync(r1, { recursive: true });
    mkdirSync(r2, { recursive: true });
    const sub = (id: string, key: string) =>
      appendLedger(r1, {
        event: 'submitted',
        id,
        tag: tagOf('R1'),
        key,
        stage: `s${id}`,
        attempt: 1,
        log: join(r1, `s${id}.${id}.log`),
        report: join(r1, `s${id}.${id}.report.json`),
        at: 1000,
      });
    sub('10', K('a'));
    sub('11', K('b'));
    appendFileSync(join(r1, 'jobs.jsonl'), '{"event":"submitted","id":"x"}\nnot json\n');
    const { client, calls } = scripted(
      row('10', 'RUNNING', 'fp-R1', K('a')) +
        row('11', 'RUNNING', 'fp-R1', K('c')) + // the ledger says key b: not ours to adopt
        row('12', 'PENDING', 'fp-R1', K('d')) + // submitted just before the runner died: not in the ledger
        row('13', 'COMPLETED', 'fp-R1', K('e')) + // over: nothing to adopt
        row('14', 'RUNNING', 'fp-R1', '(null)') + // no key at all
        row('15', 'RUNNING', 'fp-R1', 'facepipe-canary'), // the run's canary: no stage's job, no warning
    );
    const warnings: string[] = [];
    const found = await findAdoptable(client, ws, 'NOW', (m) => warnings.push(m));
    assert.equal(calls.length, 1, 'one squeue call for every open run');
    assert.ok(calls[0].includes('--name=fp-R1,fp-R2'));
    assert.deepEqual([...found.byKey.keys()].sort(), [K('a'), K('d')]);
    const a = found.byKey.get(K('a'))!;
    assert.deepEqual([a.id, a.stage, a.log, a.submittedAt], ['10', 's10', join(r1, 's10.10.log'), 1000]);
    assert.equal(found.byKey.get(K('d'))!.report, join(r1, '12.report.json'), 'its report is next to its log name');
    assert.deepEqual(found.tags, ['fp-R1']);
    assert.equal(warnings.filter((w) => /does not match what this workspace recorded/.test(w)).length, 2);
    assert.ok(warnings.some((w) => /2 line\(s\) are not facepipe ledger entries/.test(w)));
    assert.ok(existsSync(join(r2, 'closed')), 'a run with nothing alive is closed');
    assert.deepEqual(
      openRuns(ws).map((r) => r.runId),
      ['R1'],
    );
  } finally {
    removeWorkspace(ws);
  }
});

test('an end without a record names the Slurm state, the log path and its last lines', () => {
  const ws = makeWorkspace();
  try {
    const log = join(ws, '.facepipe/slurm/R/train.7.log');
    mkdirSync(join(ws, '.facepipe/slurm/R'), { recursive: true });
    writeFileSync(
      log,
      `# facepipe job 7\n${MARK}progress epoch 3\nepoch 3/10\nslurmstepd: error: *** JOB 7 CANCELLED ***\n`,
    );
    const job = (state: string, extra: Partial<JobSnapshot> = {}): JobSnapshot =>
      ({ id: '7', state, rawState: state, node: 'n2', source: 'squeue', ...extra }) as JobSnapshot;
    const base = { id: '7', log, workspace: ws, key: K('f'), resources: { time: 30, mem: '2G' } };
    const timeout = describeEnd({ ...base, job: job('TIMEOUT') });
    assert.match(
      timeout.error,
      /^Slurm job 7 hit its time limit on n2 \(resources.time: 30\); a checkpoint.*\.facepipe\/work\/f{64}/,
    );
    assert.ok(
      timeout.error.includes(
        '\n  log: .facepipe/slurm/R/train.7.log\n  last lines:\n    # facepipe job 7\n    epoch 3/10\n',
      ),
      timeout.error,
    );
    assert.doesNotMatch(timeout.error, /progress epoch 3/, 'marked lines are not log lines');
    assert.equal(timeout.retryable, true);
    assert.match(
      describeEnd({ ...base, job: job('OUT_OF_MEMORY') }).error,
      /ran out of memory on n2 \(resources.mem: 2G\)/,
    );
    assert.match(describeEnd({ ...base, job: job('NODE_FAIL') }).error, /^the node running Slurm job 7 failed \(n2\)/);
    const cancelled = describeEnd({ ...base, job: job('CANCELLED') });
    assert.deepEqual([/^Slurm job 7 was cancelled on n2/.test(cancelled.error), cancelled.retryable], [true, false]);
    const failed = describeEnd({ ...base, job: job('FAILED', { exitCode: 127 }) });
    assert.match(failed.error, /failed on n2 \(exit code 127\) before facepipe's job side reported/);
    const lost = describeEnd({ ...base, lostForMs: 61_000 });
    assert.match(lost.error, /^Slurm lost track of job 7: missing from squeue, scontrol and sacct for 61 s/);
    const noLog = describeEnd({ ...base, log: join(ws, 'nope.log'), job: job('FAILED', { exitCode: 1 }) });
    assert.match(noLog.error, /log: nope\.log does not exist: the node could not write it/);
  } finally {
    removeWorkspace(ws);
  }
});

test("a job's log is followed as it grows: whole lines only, marked lines become progress, reports and metrics", () => {
  const ws = makeWorkspace();
  try {
    const path = join(ws, 'x.log');
    const got: string[] = [];
    const f = new LogFollower(path, {
      log: (l) => got.push(`log ${l}`),
      progress: (t) => got.push(`progress ${t}`),
      metrics: (m) => got.push(`metrics ${JSON.stringify(m)}`),
      report: (r) => got.push(`report ${r.kind}`),
    });
    f.read();
    assert.deepEqual(got, [], 'no log yet (a pending job)');
    writeFileSync(path, `one\n${MARK}progress epoch 1/2\ntw`);
    f.read();
    assert.deepEqual(got, ['log one', 'progress epoch 1/2']);
    appendFileSync(path, `o é\n${MARK}metrics {"backend":"wasm"}\nlast`);
    f.read(true);
    assert.deepEqual(got.slice(2), ['log two é', 'metrics {"backend":"wasm"}', 'log last']);
    appendFileSync(
      path,
      `${MARK}report {"kind":"validation","epoch":1,"epochs":2,"metrics":{"auc":0.9},"best":true}\n${MARK}report {"kind":"bogus"}\n`,
    );
    f.read(true);
    assert.deepEqual(got.slice(5), ['report validation', `log ${MARK}report {"kind":"bogus"}`]);
  } finally {
    removeWorkspace(ws);
  }
});

test("gc leaves what a live job may write (its lease's folders, temp objects, new objects), then frees it", async () => {
  const root = makeWorkspace();
  try {
    const ws = new Workspace(root);
    const key = K('9');
    const tmp = join(ws.tmpDir, 'R-train');
    const workDir = ws.workDir(key);
    const objDir = join(ws.store.objectsDir, 'ab');
    for (const d of [tmp, workDir, objDir, join(ws.tmpDir, 'R-old')]) mkdirSync(d, { recursive: true });
    writeFileSync(join(tmp, 'model.bin'), 'partial');
    writeFileSync(join(workDir, 'epoch-checkpoint.fpck'), 'ck');
    const tmpObject = join(objDir, `${'c'.repeat(62)}.tmp-4242-0badf00d`);
    const fresh = join(objDir, 'd'.repeat(62));
    const old = join(objDir, 'e'.repeat(62));
    for (const p of [tmpObject, fresh, old]) writeFileSync(p, 'x');
    const hourAgo = new Date(Date.now() - 3600_000);
    utimesSync(old, hourAgo, hourAgo);
    const release = takeLease(ws, { key, tmp, workDir });
    assert.equal(liveLeases(ws).length, 1);

    await collectGarbage(ws, {});
    assert.deepEqual(
      [tmp, workDir, tmpObject, fresh].filter((p) => !existsSync(p)),
      [],
      'what the live job may write is kept',
    );
    assert.equal(existsSync(old), false, 'an unreferenced object older than every lease goes');
    assert.equal(existsSync(join(ws.tmpDir, 'R-old')), false, 'a temp folder no lease names goes');

    release();
    await collectGarbage(ws, {});
    assert.deepEqual(
      [tmp, workDir, tmpObject, fresh].filter((p) => existsSync(p)),
      [],
      'after the job, gc frees it all',
    );

    // A lease whose heartbeat stopped (its job died with its node) protects nothing and is removed.
    const stale = takeLease(ws, { key, tmp, workDir });
    const dir = join(ws.dot, 'live');
    const [file] = readdirSync(dir);
    const longAgo = new Date(Date.now() - STALE_MS - 1000);
    utimesSync(join(dir, file), longAgo, longAgo);
    assert.deepEqual(liveLeases(ws), []);
    assert.deepEqual(readdirSync(dir), []);
    stale();
  } finally {
    removeWorkspace(root);
  }
});

test('gc removes the Slurm folders of closed runs that are not kept; an open run (jobs may be adopted) and a kept one stay', async () => {
  const root = makeWorkspace();
  try {
    const ws = new Workspace(root);
    const slurm = (run: string) => join(root, '.facepipe', 'slurm', run);
    for (const run of ['R1-closed', 'R2-open', 'R3-kept']) {
      mkdirSync(slurm(run), { recursive: true });
      writeFileSync(join(slurm(run), 'jobs.jsonl'), '');
    }
    closeRun(slurm('R1-closed'));
    closeRun(slurm('R3-kept'));
    mkdirSync(join(ws.runsDir, 'R3-kept'), { recursive: true });
    writeFileSync(join(ws.runsDir, 'R3-kept', 'run.json'), '{"stages":[]}');

    await collectGarbage(ws, {});
    assert.deepEqual(
      ['R1-closed', 'R2-open', 'R3-kept'].map((r) => existsSync(slurm(r))),
      [false, true, true],
    );
    await collectGarbage(ws, { keepLast: 0 });
    assert.equal(existsSync(slurm('R3-kept')), false, 'a closed run whose record gc dropped goes with it');
    assert.equal(existsSync(slurm('R2-open')), true, 'an open run stays whatever is kept');
  } finally {
    removeWorkspace(root);
  }
});
