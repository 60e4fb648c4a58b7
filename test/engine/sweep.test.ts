// Sweeps: grid and seeded random points become experiments; shared stages run once; an interrupted sweep
// resumes from the cache; the memory budget limits what runs at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeWorkspace, modulesLoadedBy, removeWorkspace, run, runCli, startCli, waitFor, type Event } from './rig.js';
import { expandSweep, pointName } from '../../src/plan/sweep.js';

const PIPE = `name: sw
stages:
  prep:
    kind: command
    inputs: { text: { path: data/in.txt } }
    params: { cmd: 'cat {inputs.text} > {outputs.prep}', outputs: { prep: file } }
  train:
    kind: command
    inputs: { prep: prep.prep }
    params:
      cmd: 'echo "$A $B" > {outputs.model}; sleep "$SLEEP"'
      outputs: { model: file }
      env: { A: '1', B: x, SLEEP: '0' }
`;

const running = (events: Event[]) =>
  events.filter((e) => e.type === 'stage-state' && e.state === 'running').map((e) => (e as { stage: string }).stage);

test('a run without a sweep does not load the sampler of random sweeps (seedrandom); a random sweep does', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPE, 'data/in.txt': 'hello\n' });
  try {
    const sampler = (specifiers: string[]) => specifiers.filter((s) => /seedrandom/.test(s));
    const plain = modulesLoadedBy(ws, ['run', 'pipelines/p.yaml', '--progress', 'json']);
    assert.equal(plain.status, 0, plain.stderr);
    assert.ok(plain.specifiers.includes('commander'), 'the hook saw the imports');
    assert.ok(plain.specifiers.includes('require:yaml'), 'the hook saw the requires');
    assert.deepEqual(sampler(plain.specifiers), []);
    const random = ['--sweep', 'train.env.B=x,y,z', '--samples', '2'];
    const swept = modulesLoadedBy(ws, ['run', 'pipelines/p.yaml', '--progress', 'json', ...random]);
    assert.equal(swept.status, 0, swept.stderr);
    assert.ok(sampler(swept.specifiers).includes('require:seedrandom'), 'a random sweep requires seedrandom');
    // Options are still checked when there is no sweep.
    const bad = await runCli(ws, ['run', 'pipelines/p.yaml', '--max-points', 'many']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /--max-points "many"/);
  } finally {
    removeWorkspace(ws);
  }
});

test('a grid sweep makes one experiment per point and runs shared stages once', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPE, 'data/in.txt': 'hello\n' });
  try {
    const r = await run(ws, 'pipelines/p.yaml', '--sweep', 'train.env.A=1,2', '--sweep', 'train.env.B=x,y');
    assert.equal(r.code, 0, r.stderr);
    const ran = running(r.events);
    assert.equal(ran.filter((s) => s.endsWith('/prep')).length, 1, `prep must run once: ${ran}`);
    assert.equal(ran.filter((s) => s.endsWith('/train')).length, 4);
    const exps = readdirSync(join(ws, 'results'))
      .filter((d) => d.startsWith('sw-'))
      .sort();
    assert.equal(exps.length, 4);
    const points = exps.map((e) => JSON.parse(readFileSync(join(ws, 'results', e, 'experiment.json'), 'utf8')).point);
    assert.deepEqual(points.map((p) => `${p['train.env.A']}${p['train.env.B']}`).sort(), ['1x', '1y', '2x', '2y']);
    for (const e of exps) {
      const p = JSON.parse(readFileSync(join(ws, 'results', e, 'experiment.json'), 'utf8')).point;
      assert.equal(
        readFileSync(join(ws, 'results', e, 'train', 'model'), 'utf8').trim(),
        `${p['train.env.A']} ${p['train.env.B']}`,
      );
      assert.equal(e, pointName('sw', p), 'names are a stable function of the point');
    }
    // A wider grid reruns only the new points.
    const r2 = await run(ws, 'pipelines/p.yaml', '--sweep', 'train.env.A=1,2,3', '--sweep', 'train.env.B=x,y');
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(running(r2.events).length, 2, `only the two new points run: ${running(r2.events)}`);
  } finally {
    removeWorkspace(ws);
  }
});

test('random sweeps are seeded: same seed, same points; ranges and log ranges stay in bounds', () => {
  const spec = {
    method: 'random' as const,
    samples: 5,
    seed: 3,
    params: {
      'a.lr': { loguniform: [1e-4, 1e-2] as [number, number] },
      'a.m': { uniform: [0, 1] as [number, number] },
      'a.k': { values: [1, 2, 3] },
    },
  };
  const p1 = expandSweep(spec);
  assert.deepEqual(expandSweep(spec), p1);
  assert.notDeepEqual(expandSweep({ ...spec, seed: 4 }), p1);
  assert.equal(p1.length, 5);
  for (const p of p1) {
    assert.ok((p['a.lr'] as number) >= 1e-4 && (p['a.lr'] as number) <= 1e-2);
    assert.ok((p['a.m'] as number) >= 0 && (p['a.m'] as number) <= 1);
    assert.ok([1, 2, 3].includes(p['a.k'] as number));
  }
  assert.deepEqual(
    expandSweep({ method: 'grid', seed: 0, params: { 's.x': { range: [0, 1, 0.25] } } }).map((p) => p['s.x']),
    [0, 0.25, 0.5, 0.75, 1],
  );
});

test("a pipeline's sweep: section runs as a sweep, --no-sweep runs the base, and bad sweep keys are located", async () => {
  const withSweep = PIPE + `sweep:\n  method: random\n  samples: 2\n  seed: 1\n  params:\n    train.env.B: [p, q, r]\n`;
  const ws = makeWorkspace({ 'pipelines/p.yaml': withSweep, 'data/in.txt': 'hello\n' });
  try {
    const r = await run(ws, 'pipelines/p.yaml');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(running(r.events).filter((s) => s.endsWith('/train')).length, 2);
    const base = await run(ws, 'pipelines/p.yaml', '--no-sweep');
    assert.equal(base.code, 0, base.stderr);
    assert.ok(existsSync(join(ws, 'results/sw/train/model')));
    const bad = await runCli(ws, ['run', 'pipelines/p.yaml', '--sweep', 'train.nope=1,2']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown key 'nope'/);
    assert.match(bad.stderr, /sweep train\.nope=1/);
  } finally {
    removeWorkspace(ws);
  }
});

test('an interrupted sweep resumes: finished points come from the cache', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPE, 'data/in.txt': 'hello\n' });
  try {
    const args = [
      'run',
      'pipelines/p.yaml',
      '--progress',
      'json',
      '--sweep',
      'train.env.A=1,2,3',
      '--sweep',
      'train.env.SLEEP=1',
    ];
    let doneCount = 0;
    const first = startCli(ws, args, (e, child) => {
      if (e.type === 'stage-state' && e.state === 'done' && e.stage.endsWith('/train') && ++doneCount === 1)
        child.kill('SIGINT');
    });
    const r1 = await first.done;
    assert.equal(r1.code, 130, r1.stderr);
    const finished = r1.events
      .filter((e) => e.type === 'stage-state' && e.state === 'done' && e.stage.endsWith('/train'))
      .map((e) => (e as { stage: string }).stage);
    assert.ok(finished.length >= 1);
    const r2 = await runCli(ws, args);
    assert.equal(r2.code, 0, r2.stderr);
    const cached = r2.events
      .filter((e) => e.type === 'stage-state' && e.state === 'cached')
      .map((e) => (e as { stage: string }).stage);
    for (const f of finished) assert.ok(cached.includes(f), `${f} should be cached on resume`);
    assert.equal(running(r2.events).length, 3 - finished.length);
  } finally {
    removeWorkspace(ws);
  }
});

test('the memory budget keeps stages from running at once when they would not fit', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPE, 'data/in.txt': 'hello\n' });
  try {
    const maxConcurrent = (events: Event[]) => {
      let now = 0;
      let max = 0;
      for (const e of events) {
        if (e.type !== 'stage-state') continue;
        if (e.state === 'running') max = Math.max(max, ++now);
        else if (['done', 'failed', 'interrupted'].includes(e.state)) now--;
      }
      return max;
    };
    const tight = await run(
      ws,
      'pipelines/p.yaml',
      '--jobs',
      '2',
      '--max-memory',
      '300',
      '--sweep',
      'train.env.A=1,2',
      '--sweep',
      'train.env.SLEEP=0.5',
    );
    assert.equal(tight.code, 0, tight.stderr);
    assert.equal(maxConcurrent(tight.events), 1, 'two 256 MiB command stages do not fit in 300 MiB');
    const roomy = await run(
      ws,
      'pipelines/p.yaml',
      '--jobs',
      '2',
      '--max-memory',
      '1000',
      '--sweep',
      'train.env.A=4,5',
      '--sweep',
      'train.env.SLEEP=0.5',
    );
    assert.equal(roomy.code, 0, roomy.stderr);
    assert.equal(maxConcurrent(roomy.events), 2);
    await waitFor(() => true);
  } finally {
    removeWorkspace(ws);
  }
});
