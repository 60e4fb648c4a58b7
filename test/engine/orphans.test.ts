// No orphaned work: a command stage's whole process tree (its /bin/sh sits in a session of its own) dies with
// its worker, even when kill -9 hits the runner's whole process group; and if any of it still runs (its
// watchdog could not act), the next attempt stops it before reusing the stage's scratch folder. The stage
// waits for a 'go' file, so the tests decide when it may go on, with no timing guesses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { identityOf, procStat } from '../../src/core/procs.js';
import { finalStates, isRunning, makeWorkspace, removeWorkspace, run, startCli, waitFor, type Event } from './rig.js';

// The repro, made deterministic: a line when the shell starts, a background helper in the same tree,
// then steps once 'go' exists, and the progress file becomes the output.
const STEPS =
  'W="$FACEPIPE_WORK_DIR"; echo "start by $$" >> "$W/progress"; ' +
  '(while :; do sleep 0.05; done) & echo $! > "bg-$$.pid"; ' +
  'while [ ! -e go ]; do sleep 0.05; done; ' +
  'for i in 1 2 3; do echo "step $i by $$" >> "$W/progress"; sleep 0.1; done; cp "$W/progress" {outputs.o}';

const PIPELINE = `name: orphan
stages:
  slow:
    kind: command
    params:
      cmd: ${JSON.stringify(STEPS)}
      outputs: { o: file }
`;

/** The progress file in the stage's scratch folder (there is one key). */
function progressLines(ws: string): string[] {
  const dir = join(ws, '.facepipe/work');
  for (const key of existsSync(dir) ? readdirSync(dir) : []) {
    const p = join(dir, key, 'progress');
    if (existsSync(p)) return readFileSync(p, 'utf8').trim().split('\n');
  }
  return [];
}

const shellOf = (line: string | undefined) => Number(/^start by (\d+)$/.exec(line ?? '')?.[1] ?? NaN);

/** Start a run in its own process group; resolve once its command's shell and background helper run. */
async function startDetached(ws: string) {
  const events: Event[] = [];
  const started = startCli(ws, ['run', 'pipelines/p.yaml', '--progress', 'json'], (e) => events.push(e), {
    detached: true,
  });
  await waitFor(() => progressLines(ws).length === 1, 20_000, 'the stage to start');
  const shell = shellOf(progressLines(ws)[0]);
  await waitFor(() => existsSync(join(ws, `bg-${shell}.pid`)), 10_000, 'the background helper to start');
  const helper = Number(readFileSync(join(ws, `bg-${shell}.pid`), 'utf8'));
  assert.ok(isRunning(shell) && isRunning(helper));
  return { ...started, events, shell, helper };
}

function killGroup(pgid: number, sig: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    /* gone */
  }
}

test("kill -9 of the runner's process group: the command's shell and its background helper die too", async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
  let shell = 0;
  try {
    const first = await startDetached(ws);
    shell = first.shell;
    killGroup(first.child.pid!); // kill -9 -- -$! of `setsid facepipe run &`
    assert.equal((await first.done).signal, 'SIGKILL');
    await waitFor(() => !isRunning(first.shell), 10_000, "the stage's shell to die with its worker");
    await waitFor(() => !isRunning(first.helper), 10_000, "the shell's background helper to die too");

    writeFileSync(join(ws, 'go'), '');
    const r = await run(ws, 'pipelines/p.yaml', '--no-wait');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(finalStates(r.events), { slow: 'done' });
    const out = readFileSync(join(ws, 'results/orphan/slow/o'), 'utf8').trim().split('\n');
    const second = shellOf(out[1]);
    assert.deepEqual(
      out,
      [`start by ${first.shell}`, `start by ${second}`, ...[1, 2, 3].map((i) => `step ${i} by ${second}`)],
      'one process wrote the steps: nothing of the killed run ran beside the new one',
    );
    // A background job still running when its stage ends is stopped with it.
    const helper2 = Number(readFileSync(join(ws, `bg-${second}.pid`), 'utf8'));
    assert.equal(isRunning(helper2), false, 'the finished stage left no background job running');
  } finally {
    if (shell) killGroup(shell);
    removeWorkspace(ws);
  }
});

test('a command session that outlived its worker is found and stopped before its scratch folder is reused', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
  let shell = 0;
  try {
    const first = await startDetached(ws);
    shell = first.shell;
    // Freeze the command's group (its watchdog included) so that it cannot notice its worker die.
    killGroup(first.shell, 'SIGSTOP');
    killGroup(first.child.pid!);
    await first.done;
    assert.ok(isRunning(first.shell), 'the frozen shell survives the kill');

    const events: Event[] = [];
    const second = startCli(ws, ['run', 'pipelines/p.yaml', '--progress', 'json', '--no-wait'], (e) => events.push(e));
    await waitFor(() => progressLines(ws).length === 2, 20_000, 'the second attempt to start');
    assert.equal(isRunning(first.shell), false, 'the earlier shell was stopped before the new one started');
    assert.equal(isRunning(first.helper), false, 'and so was its background helper');
    killGroup(first.shell, 'SIGCONT'); // were it still there, it would now write beside the new one
    writeFileSync(join(ws, 'go'), '');
    const r = await second.done;
    assert.equal(r.code, 0, r.stderr);
    const out = readFileSync(join(ws, 'results/orphan/slow/o'), 'utf8').trim().split('\n');
    const next = shellOf(out[1]);
    assert.deepEqual(out, [
      `start by ${first.shell}`,
      `start by ${next}`,
      ...[1, 2, 3].map((i) => `step ${i} by ${next}`),
    ]);
    const log = events.filter((e) => e.type === 'stage-log').map((e) => (e.type === 'stage-log' ? e.line : ''));
    assert.ok(
      log.some((l) => /^# stopped \d+ process\(es\) of an earlier attempt/.test(l)),
      `the stage log says what it stopped: ${log.join(' | ')}`,
    );
  } finally {
    if (shell) {
      killGroup(shell, 'SIGKILL');
      killGroup(shell, 'SIGCONT');
    }
    removeWorkspace(ws);
  }
});

test('a command that ignores SIGTERM still stops when its run is interrupted; `wait` in a command still returns', async () => {
  const stubborn = JSON.stringify(
    "trap '' TERM; echo $$ > stubborn.pid; while [ ! -e go ]; do sleep 0.05; done; echo late > {outputs.o}",
  );
  const waits = JSON.stringify('sleep 0.2 & sleep 0.1 & wait; echo waited > {outputs.o}');
  const ws = makeWorkspace({
    'pipelines/p.yaml': `name: stubborn
stages:
  waits:
    kind: command
    params: { cmd: ${waits}, outputs: { o: file } }
  stubborn:
    kind: command
    inputs: { w: waits.o }
    params: { cmd: ${stubborn}, outputs: { o: file } }
`,
  });
  let shell = 0;
  try {
    const { child, done } = startCli(ws, ['run', 'pipelines/p.yaml', '--progress', 'json']);
    const pidFile = join(ws, 'stubborn.pid');
    await waitFor(() => existsSync(pidFile) && /^\d+\n$/.test(readFileSync(pidFile, 'utf8')), 20_000, 'stubborn');
    shell = Number(readFileSync(pidFile, 'utf8'));
    child.kill('SIGINT');
    const r = await done;
    assert.equal(r.code, 130, r.stderr);
    assert.deepEqual(finalStates(r.events), { waits: 'done', stubborn: 'interrupted' });
    assert.equal(readFileSync(join(ws, 'results/stubborn/waits/o'), 'utf8'), 'waited\n');
    await waitFor(() => !isRunning(shell), 15_000, 'the shell that ignores SIGTERM to be stopped');
  } finally {
    if (shell) killGroup(shell);
    removeWorkspace(ws);
  }
});

test('a session note naming some other live process (copied, edited) kills nothing', async () => {
  const ws = makeWorkspace({
    'pipelines/p.yaml': `name: note
stages:
  s:
    kind: command
    params: { cmd: "[ -e go ] || exit 3; echo ok > {outputs.o}", outputs: { o: file } }
`,
  });
  const bystander = spawn('sleep', ['30'], { stdio: 'ignore', detached: true });
  try {
    assert.equal((await run(ws, 'pipelines/p.yaml')).code, 1, 'fails first, keeping its scratch folder');
    const [key] = readdirSync(join(ws, '.facepipe/work'));
    await waitFor(() => procStat(bystander.pid!) !== undefined, 5000, 'sleep to start');
    // A note that matches the bystander exactly (host, boot, pid, start time): only the marker can tell.
    writeFileSync(
      join(ws, '.facepipe/work', key, '.facepipe-command-session.json'),
      JSON.stringify(identityOf(bystander.pid)),
    );
    writeFileSync(join(ws, 'go'), '');
    const r = await run(ws, 'pipelines/p.yaml');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(isRunning(bystander.pid!), 'the bystander still runs');
  } finally {
    bystander.kill('SIGKILL');
    removeWorkspace(ws);
  }
});
