// Watch mode: reruns what a change affects, survives validation errors, cancels a superseded run cleanly,
// and does not retry a failed stage until its inputs change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeWorkspace, removeWorkspace, startCli, waitFor, type Event } from './rig.js';

const PIPE = `name: w
stages:
  slow:
    kind: command
    inputs: { a: { path: data/a.txt } }
    params: { cmd: 'sleep "$(head -c 3 {inputs.a})"; cat {inputs.a} > {outputs.out}', outputs: { out: file } }
  fragile:
    kind: command
    inputs: { b: { path: data/b.txt } }
    params: { cmd: 'if grep -q bad {inputs.b}; then echo broken >&2; exit 3; fi; cat {inputs.b} > {outputs.out}', outputs: { out: file } }
`;

function watcher(ws: string) {
  const events: Event[] = [];
  const w = startCli(ws, ['watch', 'pipelines/p.yaml', '--progress', 'json', '--debounce', '100'], (e) =>
    events.push(e),
  );
  const runEnds = () => events.filter((e) => e.type === 'run-end');
  const states = (stage: string) =>
    events
      .filter((e) => e.type === 'stage-state' && e.stage === stage)
      .map((e) => e as Extract<Event, { type: 'stage-state' }>);
  return { ...w, events, runEnds, states };
}

test('watch reruns affected stages, cancels a superseded run, shows validation errors and keeps going', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPE, 'data/a.txt': '0.1\n', 'data/b.txt': 'ok\n' });
  const w = watcher(ws);
  try {
    await waitFor(() => w.runEnds().length === 1, 20_000, 'first run');
    assert.equal((w.runEnds()[0] as { status: string }).status, 'ok');

    // A change to a.txt reruns slow only.
    const before = w.states('fragile').length;
    writeFileSync(join(ws, 'data/a.txt'), '0.2\n');
    await waitFor(() => w.runEnds().length === 2, 20_000, 'second run');
    assert.equal(w.states('slow').at(-1)!.state, 'done');
    assert.deepEqual(
      w
        .states('fragile')
        .slice(before)
        .map((s) => s.state)
        .filter((s) => s !== 'waiting'),
      ['cached'],
    );

    // A long run superseded by a newer change is cancelled (interrupted) and restarted.
    writeFileSync(join(ws, 'data/a.txt'), '5.0\n');
    await waitFor(() => w.states('slow').at(-1)?.state === 'running', 20_000, 'slow running');
    writeFileSync(join(ws, 'data/a.txt'), '0.3\n');
    await waitFor(() => w.runEnds().length === 4, 30_000, 'cancelled run and its replacement');
    assert.equal((w.runEnds()[2] as { status: string }).status, 'interrupted');
    assert.equal((w.runEnds()[3] as { status: string }).status, 'ok');
    assert.ok(w.states('slow').some((s) => s.state === 'interrupted'));

    // A validation error is reported and watching goes on; fixing the file runs again.
    const ends = w.runEnds().length;
    writeFileSync(join(ws, 'pipelines/p.yaml'), PIPE + '  broken: [\n');
    let stderr = '';
    w.child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    await waitFor(() => /yaml-syntax/.test(stderr), 20_000, 'validation error');
    assert.match(stderr, /p\.yaml:\d+:\d+/);
    writeFileSync(join(ws, 'pipelines/p.yaml'), PIPE);
    await waitFor(() => w.runEnds().length === ends + 1, 20_000, 'run after the fix');
  } finally {
    w.child.kill('SIGINT');
    await w.done;
    removeWorkspace(ws);
  }
});

test('watch does not retry a failed stage until one of its inputs changes', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPE, 'data/a.txt': '0.0\n', 'data/b.txt': 'bad\n' });
  const w = watcher(ws);
  try {
    await waitFor(() => w.runEnds().length === 1, 20_000, 'first run');
    assert.equal(w.states('fragile').at(-1)!.state, 'failed');
    const ranBefore = w.states('fragile').filter((s) => s.state === 'running').length;
    appendFileSync(join(ws, 'data/a.txt'), '\n');
    await waitFor(() => w.runEnds().length === 2, 20_000, 'second run');
    const last = w.states('fragile').at(-1)!;
    assert.equal(last.state, 'failed');
    assert.match(last.reason ?? '', /not retried/);
    assert.equal(
      w.states('fragile').filter((s) => s.state === 'running').length,
      ranBefore,
      'fragile must not run again',
    );
    writeFileSync(join(ws, 'data/b.txt'), 'good\n');
    await waitFor(() => w.runEnds().length === 3, 20_000, 'third run');
    assert.equal(w.states('fragile').at(-1)!.state, 'done');
    // Nothing half-written was committed: every store record names outputs.
    const recs = readdirSync(join(ws, '.facepipe/store/stages'));
    assert.ok(recs.length >= 3);
  } finally {
    w.child.kill('SIGINT');
    await w.done;
    removeWorkspace(ws);
  }
});
