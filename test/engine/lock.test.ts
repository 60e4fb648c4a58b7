// One run at a time per workspace: a second run waits (saying who holds the lock) or, with --no-wait, fails
// clearly; stale locks are taken over. Also: --jobs 2 really runs independent stages at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '../../src/core/hash.js';
import { procStat } from '../../src/core/procs.js';
import { acquireLock, type LockHolder } from '../../src/execute/lock.js';
import {
  deadPid,
  finalStates,
  listFiles,
  makeWorkspace,
  removeWorkspace,
  repoRoot,
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

// ---- Locks that must be taken over (stale or malformed), and those that must not. In-process: the lock module
// itself, with holders made up of real processes (dead, zombie, reused pid, this very process).

function lockFile(): string {
  const ws = makeWorkspace();
  mkdirSync(join(ws, '.facepipe'));
  return join(ws, '.facepipe', 'lock');
}
const holder = (over: Record<string, unknown>) =>
  JSON.stringify({
    pid: deadPid(),
    host: hostname(),
    command: 'facepipe run x',
    startedAt: '2020-01-01T00:00:00Z',
    ...over,
  });

/** acquireLock without waiting: resolves to what happened. */
async function tryLock(path: string): Promise<{ got: boolean; tookOver: string[]; error?: string }> {
  const tookOver: string[] = [];
  try {
    const release = await acquireLock(path, { command: 'test', wait: false, onTakeOver: (w) => tookOver.push(w) });
    const mine = JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
    assert.equal(mine.pid, process.pid, 'the lock now names us');
    release();
    assert.equal(existsSync(path), false, 'release removes it');
    return { got: true, tookOver };
  } catch (e) {
    return { got: false, tookOver, error: (e as Error).message };
  }
}

test('a malformed lock ({}, [], pid 0 or -1, wrong types, truncated) is stale and taken over, saying so', async () => {
  const bad = [
    '{}',
    '[]',
    'null',
    '"held"',
    '',
    '{"pid": 12',
    holder({ pid: 0 }),
    holder({ pid: -1 }),
    holder({ pid: '4242' }),
    holder({ pid: 1.5 }),
    holder({ host: 5 }),
    holder({ host: '' }),
    holder({ command: null }),
    holder({ procStart: 'soon' }),
  ];
  for (const text of bad) {
    const path = lockFile();
    try {
      writeFileSync(path, text);
      const r = await tryLock(path);
      assert.ok(r.got, `lock ${JSON.stringify(text)}: ${r.error}`);
      assert.match(r.tookOver.join('\n'), /took over .*(malformed|gone)/, `lock ${JSON.stringify(text)}`);
    } finally {
      removeWorkspace(join(path, '../..'));
    }
  }
});

test('a lock that is a folder is an error naming it and the fix, not a wait', async () => {
  const path = lockFile();
  try {
    mkdirSync(path);
    const r = await tryLock(path);
    assert.equal(r.got, false);
    assert.match(r.error!, /cannot read the workspace lock .*\.facepipe\/lock: .*EISDIR/);
  } finally {
    removeWorkspace(join(path, '../..'));
  }
});

test('a stale lock naming our own pid (pid reuse in a container) is taken over; our live lock is not', async () => {
  const path = lockFile();
  try {
    writeFileSync(path, holder({ pid: process.pid }));
    const r = await tryLock(path);
    assert.ok(r.got, r.error);
    assert.match(r.tookOver[0], /this very process's pid/);

    const release = await acquireLock(path, { command: 'first', wait: false });
    try {
      const again = await tryLock(path);
      assert.equal(again.got, false, 'a lock this process holds is never taken over by itself');
      assert.match(again.error!, /in use by pid \d+ .*\(first,/);
    } finally {
      release();
    }
  } finally {
    removeWorkspace(join(path, '../..'));
  }
});

test('a zombie holder is dead; a live pid with another start time (reused) or from before a reboot is stale', async () => {
  // `sleep 0.1 &` then exec: the new parent never waits, so the child stays a zombie for 30 s.
  const parent = spawn('/bin/sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 30'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const live = spawn('sleep', ['30'], { stdio: 'ignore' });
  const path = lockFile();
  try {
    const zombie = await new Promise<number>((res) =>
      parent.stdout.once('data', (c: Buffer) => res(Number(c.toString()))),
    );
    await waitFor(() => procStat(zombie)?.state === 'Z', 10_000, 'a zombie');
    writeFileSync(path, holder({ pid: zombie }));
    const z = await tryLock(path);
    assert.ok(z.got, `a zombie is not a holder: ${z.error}`);

    await waitFor(() => procStat(live.pid!) !== undefined, 5000, 'sleep to start');
    const start = procStat(live.pid!)!.start;
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    writeFileSync(path, holder({ pid: live.pid, procStart: start + 1, bootId: boot }));
    const reused = await tryLock(path);
    assert.ok(reused.got, `a reused pid is not the holder: ${reused.error}`);

    writeFileSync(path, holder({ pid: live.pid, procStart: start, bootId: '00000000-0000-0000-0000-000000000000' }));
    const rebooted = await tryLock(path);
    assert.ok(rebooted.got, `a lock from before a reboot is stale: ${rebooted.error}`);

    // The real holder (same pid, start time and boot), or one on another host: waited for, never taken.
    for (const h of [holder({ pid: live.pid, procStart: start, bootId: boot }), holder({ host: 'elsewhere' })]) {
      writeFileSync(path, h);
      const r = await tryLock(path);
      assert.equal(r.got, false, `not stale: ${h}`);
      assert.match(r.error!, /the workspace is in use by pid \d+ on /);
    }
  } finally {
    parent.kill('SIGKILL');
    live.kill('SIGKILL');
    removeWorkspace(join(path, '../..'));
  }
});

test('processes racing for a stale lock: exactly one holds it at any time', async () => {
  const ws = makeWorkspace();
  const path = join(ws, '.facepipe', 'lock');
  writeFiles(ws, { '.facepipe/lock': holder({}) });
  const mod = join(repoRoot(), 'dist/src/execute/lock.js');
  const script = `
    const { acquireLock } = await import(${JSON.stringify(mod)});
    const { appendFileSync } = await import('node:fs');
    const release = await acquireLock(${JSON.stringify(path)}, { command: 'race', wait: true, pollMs: 5 });
    appendFileSync(${JSON.stringify(join(ws, 'log'))}, 'in ' + process.pid + '\\n');
    await new Promise((r) => setTimeout(r, 30));
    appendFileSync(${JSON.stringify(join(ws, 'log'))}, 'out ' + process.pid + '\\n');
    release();`;
  try {
    const kids = Array.from({ length: 6 }, () =>
      spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit'] }),
    );
    const codes = await Promise.all(kids.map((k) => new Promise((r) => k.on('close', r))));
    assert.deepEqual(codes, [0, 0, 0, 0, 0, 0]);
    const lines = readFileSync(join(ws, 'log'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 12);
    for (let i = 0; i < lines.length; i += 2) {
      const pid = lines[i].split(' ')[1];
      assert.deepEqual([lines[i], lines[i + 1]], [`in ${pid}`, `out ${pid}`], `no overlap: ${lines.join(', ')}`);
    }
    assert.equal(existsSync(path), false);
  } finally {
    removeWorkspace(ws);
  }
});

test('facepipe run takes over a lock of {} at once and warns which lock it took over', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE, go: '', '.facepipe/lock': '{}' });
  try {
    const r = await run(ws, 'pipelines/p.yaml', '--no-wait');
    assert.equal(r.code, 0, r.stderr);
    const warnings = r.events.filter((e) => e.type === 'warning').map((e) => (e.type === 'warning' ? e.message : ''));
    assert.ok(
      warnings.some((w) => /took over .*lock: it was malformed/.test(w)),
      warnings.join('\n'),
    );
    assert.equal(existsSync(join(ws, '.facepipe/lock')), false);
  } finally {
    removeWorkspace(ws);
  }
});
