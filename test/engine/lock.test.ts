// One run at a time per workspace: a second run waits (saying who holds the lock) or, with --no-wait, fails
// clearly; stale locks are taken over. Also: --jobs 2 really runs independent stages at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '../../src/core/hash.js';
import {
  finalStates,
  listFiles,
  makeWorkspace,
  removeWorkspace,
  run,
  startCli,
  waitFor,
  writeFiles,
  type Event,
} from './rig.js';

const PIPELINE = `name: lk
stages:
  gate:
    kind: command
    params:
      cmd: ${JSON.stringify('while [ ! -e go ]; do sleep 0.05; done; echo gated > {outputs.o}')}
      outputs: { o: file }
  tail:
    kind: command
    inputs: { g: gate.o }
    params:
      cmd: mkdir -p {outputs.d}/sub && cp {inputs.g} {outputs.d}/sub/copy
      outputs: { d: dir }
`;

/** Every store object's bytes hash to its name. */
function assertStoreIntact(ws: string): void {
  const dir = join(ws, '.facepipe/store/objects');
  const files = listFiles(dir);
  assert.ok(files.length > 0);
  for (const f of files) assert.equal(sha256(readFileSync(join(dir, f))), f.replace('/', ''), `object ${f}`);
}

test('two concurrent runs: the second waits (lock-wait names the holder), or fails with --no-wait; nothing is corrupted', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
  try {
    const ev1: Event[] = [];
    const first = startCli(ws, ['run', 'pipelines/p.yaml', '--progress', 'json'], (e) => ev1.push(e));
    await waitFor(
      () => ev1.some((e) => e.type === 'stage-state' && e.stage === 'gate' && e.state === 'running'),
      20_000,
      'first run to start',
    );

    const noWait = startCli(ws, ['run', 'pipelines/p.yaml', '--progress', 'json', '--no-wait']);
    const nw = await noWait.done;
    assert.equal(nw.code, 2);
    assert.match(
      nw.stderr,
      new RegExp(
        `error\\[locked\\]: the workspace is in use by pid ${first.child.pid} on ${hostname()} \\(facepipe run pipelines/p\\.yaml`,
      ),
    );
    assert.match(nw.stderr, /fix: wait for it to finish/);

    const ev2: Event[] = [];
    const second = startCli(ws, ['run', 'pipelines/p.yaml', '--progress', 'json'], (e) => ev2.push(e));
    await waitFor(() => ev2.some((e) => e.type === 'lock-wait'), 20_000, 'the second run to report lock-wait');
    const wait = ev2.find((e) => e.type === 'lock-wait')!;
    assert.ok(
      wait.type === 'lock-wait' && wait.holder.startsWith(`pid ${first.child.pid} on ${hostname()}`),
      JSON.stringify(wait),
    );
    assert.ok(
      !ev2.some((e) => e.type === 'run-start'),
      'the second run has not started while the first holds the lock',
    );

    // Ctrl-C while queued for the lock: leaves at once with 130, without disturbing the holder.
    const ev3: Event[] = [];
    const third = startCli(ws, ['run', 'pipelines/p.yaml', '--progress', 'json'], (e) => ev3.push(e));
    await waitFor(() => ev3.some((e) => e.type === 'lock-wait'), 20_000, 'the third run to report lock-wait');
    third.child.kill('SIGINT');
    const r3 = await third.done;
    assert.equal(r3.code, 130, r3.stderr);
    assert.match(r3.stderr, /interrupted while waiting for the workspace lock/);
    assert.equal(
      (JSON.parse(readFileSync(join(ws, '.facepipe/lock'), 'utf8')) as { pid: number }).pid,
      first.child.pid,
      'the holder keeps its lock',
    );

    writeFileSync(join(ws, 'go'), '');
    const [r1, r2] = await Promise.all([first.done, second.done]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(finalStates(r1.events), { gate: 'done', tail: 'done' });
    assert.deepEqual(finalStates(r2.events), { gate: 'cached', tail: 'cached' });
    const start2 = Date.parse(r2.events.find((e) => e.type === 'run-start')!.time);
    const end1 = Date.parse(r1.events.find((e) => e.type === 'run-end')!.time);
    assert.ok(start2 >= end1, 'the second run started after the first ended');
    assert.equal(readFileSync(join(ws, 'results/lk/tail/d/sub/copy'), 'utf8'), 'gated\n');
    assertStoreIntact(ws);
    assert.equal(existsSync(join(ws, '.facepipe/lock')), false);
    assert.deepEqual(readdirSync(join(ws, '.facepipe/tmp')), [], 'no temporary outputs left');
  } finally {
    removeWorkspace(ws);
  }
});

test('a stale lock (naming a dead pid on this host) or a damaged lock file is taken over', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE, go: '' });
  try {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const deadPid = Number(dead.stdout.toString());
    writeFiles(ws, {
      '.facepipe/lock': JSON.stringify({
        pid: deadPid,
        host: hostname(),
        command: 'facepipe run x',
        startedAt: '2020-01-01T00:00:00.000Z',
      }),
    });
    const r = await run(ws, 'pipelines/p.yaml', '--no-wait');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.events.some((e) => e.type === 'lock-wait'));
    assert.deepEqual(finalStates(r.events), { gate: 'done', tail: 'done' });

    writeFiles(ws, { '.facepipe/lock': '{"pid": 12' });
    const r2 = await run(ws, 'pipelines/p.yaml', '--no-wait');
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(finalStates(r2.events), { gate: 'cached', tail: 'cached' });
    assert.equal(existsSync(join(ws, '.facepipe/lock')), false);
  } finally {
    removeWorkspace(ws);
  }
});

test('--jobs 2 runs two independent stages at once (both running before either is done)', async () => {
  // Each stage waits until the other has started: with one job at a time this cannot finish (it fails after ~10 s).
  const barrier = (me: string, other: string) =>
    JSON.stringify(
      `touch ${me}.started; i=0; while [ ! -e ${other}.started ]; do i=$((i+1)); [ $i -gt 200 ] && exit 9; sleep 0.05; done; echo ${me} > {outputs.o}`,
    );
  const ws = makeWorkspace({
    'pipelines/p.yaml': `name: par
stages:
  left:
    kind: command
    params: { cmd: ${barrier('left', 'right')}, outputs: { o: file } }
  right:
    kind: command
    params: { cmd: ${barrier('right', 'left')}, outputs: { o: file } }
  join:
    kind: command
    inputs: { l: left.o, r: right.o }
    params: { cmd: "cat {inputs.l} {inputs.r} > {outputs.o}", outputs: { o: file } }
`,
  });
  try {
    const r = await run(ws, 'pipelines/p.yaml', '--jobs', '2');
    assert.equal(r.code, 0, r.stderr);
    const states = r.events
      .filter((e) => e.type === 'stage-state' && (e.state === 'running' || e.state === 'done'))
      .map((e) => (e.type === 'stage-state' ? `${e.stage}:${e.state}` : ''));
    const firstDone = states.findIndex((s) => s.endsWith(':done'));
    assert.ok(
      states.indexOf('left:running') < firstDone && states.indexOf('right:running') < firstDone,
      states.join(' '),
    );
    assert.equal(states.at(-1), 'join:done');
    assert.equal(readFileSync(join(ws, 'results/par/join/o'), 'utf8'), 'left\nright\n');
    const start = r.events.find((e) => e.type === 'run-start')!;
    assert.ok(start.type === 'run-start' && start.jobs === 2);
  } finally {
    removeWorkspace(ws);
  }
});

test('--jobs 1 never runs two stages at once', async () => {
  const ws = makeWorkspace({
    'pipelines/p.yaml': `stages:\n  a:\n    kind: command\n    params: { cmd: "echo a > {outputs.o}", outputs: { o: file } }\n  b:\n    kind: command\n    params: { cmd: "echo b > {outputs.o}", outputs: { o: file } }\n`,
  });
  try {
    const r = await run(ws, 'pipelines/p.yaml');
    assert.equal(r.code, 0, r.stderr);
    // A stage holds its job slot from 'running' until 'done' (its outputs stored and copied to results/).
    let active = 0;
    let max = 0;
    for (const e of r.events) {
      if (e.type === 'stage-state' && e.state === 'running') active++;
      if (e.type === 'stage-state' && e.state === 'done') active--;
      max = Math.max(max, active);
    }
    assert.equal(max, 1, 'at most one stage running at a time');
    assert.equal(active, 0);
  } finally {
    removeWorkspace(ws);
  }
});
