// Crash safety: kill -9 of the runner mid-stage, and Ctrl-C (SIGINT). The slow stage waits for a 'go' file,
// so the tests control exactly when it may finish, with no timing guesses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  finalStates,
  isAlive,
  makeWorkspace,
  removeWorkspace,
  run,
  runReasons,
  startCli,
  waitFor,
  type Event,
} from './rig.js';

const PIPELINE = `name: crash
stages:
  quick:
    kind: command
    params:
      cmd: echo quick > {outputs.o}
      outputs: { o: file }
  slow:
    kind: command
    inputs: { q: quick.o }
    params:
      cmd: ${JSON.stringify('echo $$ > slow.pid; echo partial > {outputs.o}; while [ ! -e go ]; do sleep 0.05; done; cat {inputs.q} > {outputs.o}; echo finished >> {outputs.o}')}
      outputs: { o: file }
`;

const records = (ws: string) =>
  existsSync(join(ws, '.facepipe/store/stages')) ? readdirSync(join(ws, '.facepipe/store/stages')) : [];

const pidWritten = (ws: string) =>
  existsSync(join(ws, 'slow.pid')) && /^\d+\n$/.test(readFileSync(join(ws, 'slow.pid'), 'utf8'));

/** Start a run and resolve once the slow stage's shell is running (its pid file written). */
async function startUntilSlowRuns(ws: string) {
  const events: Event[] = [];
  const started = startCli(ws, ['run', 'pipelines/p.yaml', '--progress', 'json'], (e) => events.push(e));
  await waitFor(
    () => events.some((e) => e.type === 'stage-state' && e.stage === 'slow' && e.state === 'running') && pidWritten(ws),
    20_000,
    'slow stage to start',
  );
  const shellPid = Number(readFileSync(join(ws, 'slow.pid'), 'utf8'));
  assert.ok(shellPid > 0 && isAlive(shellPid));
  return { ...started, events, shellPid };
}

test('kill -9 of the runner mid-stage: completed stages stay cached, no partial entry, the resume completes', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
  try {
    const { child, done, shellPid } = await startUntilSlowRuns(ws);
    assert.equal(records(ws).length, 1, 'quick is committed before slow starts');
    child.kill('SIGKILL');
    const killed = await done;
    assert.equal(killed.signal, 'SIGKILL');
    // The stage's process notices the runner is gone and stops its command.
    await waitFor(() => !isAlive(shellPid), 10_000, 'the orphaned stage command to stop');
    assert.equal(records(ws).length, 1, 'no record for the interrupted stage');
    const lock = JSON.parse(readFileSync(join(ws, '.facepipe/lock'), 'utf8')) as { pid: number };
    assert.equal(lock.pid, child.pid, "the dead runner's lock is left behind");

    writeFileSync(join(ws, 'go'), '');
    const resumed = await run(ws, 'pipelines/p.yaml', '--no-wait');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.ok(!resumed.events.some((e) => e.type === 'lock-wait'), 'a stale lock is taken over without waiting');
    assert.deepEqual(finalStates(resumed.events), { quick: 'cached', slow: 'done' });
    assert.equal(runReasons(resumed.events).slow, 'never run');
    assert.equal(readFileSync(join(ws, 'results/crash/slow/o'), 'utf8'), 'quick\nfinished\n');
    assert.equal(records(ws).length, 2);
    assert.equal(existsSync(join(ws, '.facepipe/lock')), false, 'the lock is released');
  } finally {
    removeWorkspace(ws);
  }
});

test('SIGINT: exit code 130, the running stage is interrupted, completed stages are kept', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
  try {
    const { child, done, shellPid } = await startUntilSlowRuns(ws);
    child.kill('SIGINT');
    const r = await done;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /stopping/);
    assert.deepEqual(finalStates(r.events), { quick: 'done', slow: 'interrupted' });
    const end = r.events.at(-1)!;
    assert.ok(end.type === 'run-end' && end.status === 'interrupted');
    await waitFor(() => !isAlive(shellPid), 10_000, 'the stage command to stop');
    assert.equal(records(ws).length, 1, 'only the completed stage is committed');
    assert.equal(existsSync(join(ws, '.facepipe/lock')), false, 'the lock is released');
    const runDir = readdirSync(join(ws, 'results/runs'))[0];
    const rec = JSON.parse(readFileSync(join(ws, 'results/runs', runDir, 'run.json'), 'utf8')) as { status: string };
    assert.equal(rec.status, 'interrupted');

    writeFileSync(join(ws, 'go'), '');
    const resumed = await run(ws, 'pipelines/p.yaml');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(finalStates(resumed.events), { quick: 'cached', slow: 'done' });
    assert.equal(readFileSync(join(ws, 'results/crash/slow/o'), 'utf8'), 'quick\nfinished\n');
  } finally {
    removeWorkspace(ws);
  }
});

test('a failing stage: exit code 1, its downstream is skipped, nothing of it is cached', async () => {
  const ws = makeWorkspace({
    'pipelines/p.yaml': `name: f
stages:
  bad:
    kind: command
    params: { cmd: "echo oops >&2; exit 3", outputs: { o: file } }
  after:
    kind: command
    inputs: { x: bad.o }
    params: { cmd: "cp {inputs.x} {outputs.o}", outputs: { o: file } }
  lazy:
    kind: command
    params: { cmd: "true", outputs: { o: file } }
  shape:
    kind: command
    params: { cmd: "mkdir {outputs.o}", outputs: { o: file } }
`,
  });
  try {
    const r = await run(ws, 'pipelines/p.yaml');
    assert.equal(r.code, 1);
    assert.deepEqual(finalStates(r.events), { bad: 'failed', after: 'skipped', lazy: 'failed', shape: 'failed' });
    assert.match(r.stderr, /stage shape failed: output 'o' is declared as a file but the stage wrote a folder/);
    assert.match(r.stderr, /stage bad failed: command exited with code 3 \(log: results\/runs\/.+\/logs\/bad\.log\)/);
    assert.match(r.stderr, /stage lazy failed: the stage finished without writing its output 'o' \(file\)/);
    const log = r.stderr.match(/log: (\S+)\)/)![1];
    assert.match(readFileSync(join(ws, log), 'utf8'), /oops/);
    assert.equal(records(ws).length, 0);
  } finally {
    removeWorkspace(ws);
  }
});
