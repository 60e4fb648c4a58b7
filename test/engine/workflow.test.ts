// The experiment workflow through the CLI, on command stages that report metrics: targets (--until) and the
// ways of forcing (--force all, -F, -R) in run and status alike, the git state in run.json, a sweep naming its
// best point, exps apply rerunning an experiment from its config, figures kept after an interrupted run, and
// watch printing the headline metrics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  finalStates,
  makeWorkspace,
  parseStatus,
  removeWorkspace,
  run,
  runCli,
  runReasons,
  startCli,
  waitFor,
  type Event,
} from './rig.js';

const metricsCmd =
  'while [ -e hold ]; do sleep 0.05; done; printf \'{"loss": %s, "score": %s, "note": "ok"}\' "$LOSS" "$SCORE" > {outputs.m}; cp {inputs.p} {outputs.model}';

const PIPELINE = `name: wf
stages:
  prep:
    kind: command
    inputs: { text: { path: data/words.txt } }
    params: { cmd: 'cat {inputs.text} > {outputs.o}', outputs: { o: file } }
  train:
    kind: command
    inputs: { p: prep.o }
    params:
      cmd: ${JSON.stringify(metricsCmd)}
      env: { LOSS: 1, SCORE: 0.5 }
      outputs: { m: file, model: file }
      metrics: m
      headline: [score, 'loss:min']
  report:
    kind: command
    inputs: { model: train.model }
    params: { cmd: 'wc -c < {inputs.model} > {outputs.r}', outputs: { r: file } }
`;

const P = 'pipelines/p.yaml';
const files = { [P]: PIPELINE, 'data/words.txt': 'alpha beta\n' };

async function status(ws: string, ...extra: string[]) {
  const r = await runCli(ws, ['status', P, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return parseStatus(r.stdout);
}

const experiment = (ws: string, name = 'wf') =>
  JSON.parse(readFileSync(join(ws, 'results', name, 'experiment.json'), 'utf8')) as {
    lastRun: string;
    git: unknown;
    stages: Record<
      string,
      { state: string; metrics: Record<string, unknown>; params: Record<string, unknown>; kept?: unknown }
    >;
  };

test('--until STAGE runs only what it needs; status says the same; other stages keep their figures, marked', async () => {
  const ws = makeWorkspace(files);
  try {
    const st = await status(ws, '--until', 'train');
    assert.deepEqual(Object.keys(st), ['prep', 'train'], 'status lists what the target needs');
    const r = await run(ws, P, '--until', 'train');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(finalStates(r.events), { prep: 'done', train: 'done' });
    const start = r.events.find((e) => e.type === 'run-start') as { stages: string[] };
    assert.deepEqual(start.stages, ['prep', 'train']);
    assert.equal(existsSync(join(ws, 'results/wf/report')), false);
    assert.deepEqual((await run(ws, P, '--until', 'prep,report')).code, 0, 'a target list');
    // A full run, then a change run only --until train: report keeps its last figures, marked as not run.
    assert.equal((await run(ws, P)).code, 0);
    const before = experiment(ws);
    assert.equal(before.stages.train.metrics.score, 0.5, 'the metrics file became the stage metrics');
    const changed = await run(ws, P, '--until', 'train', '--set', 'train.env.SCORE=0.7');
    assert.deepEqual(finalStates(changed.events), { prep: 'cached', train: 'done' });
    const after = experiment(ws);
    assert.equal(after.stages.train.metrics.score, 0.7);
    assert.deepEqual(after.stages.report.kept, { run: before.lastRun, state: 'not-run' });
    const exps = await runCli(ws, ['exps']);
    assert.match(exps.stdout, /^wf\s+report\s/m, 'the row names the stage whose figures are kept');
    const bad = await runCli(ws, ['run', P, '--until', 'trian']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--until trian: no stage named 'trian'; did you mean 'train'\?/);
  } finally {
    removeWorkspace(ws);
  }
});

test('--force all, -F and --force-downstream (-R): run and status force the same stages and say which option', async () => {
  const ws = makeWorkspace(files);
  try {
    assert.equal((await run(ws, P)).code, 0);
    for (const args of [['--force', 'all'], ['-F']]) {
      const st = await status(ws, ...args);
      assert.deepEqual(
        Object.values(st).map((s) => s.reason),
        ['forced (--force all)', 'forced (--force all)', 'forced (--force all)'],
      );
      const r = await run(ws, P, ...args);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(finalStates(r.events), { prep: 'done', train: 'done', report: 'done' });
    }
    const st = await status(ws, '--force-downstream', 'train');
    assert.deepEqual(Object.fromEntries(Object.entries(st).map(([k, v]) => [k, `${v.action} ${v.reason}`.trim()])), {
      prep: 'cached',
      train: 'will run forced (--force-downstream train)',
      report: 'will run forced (--force-downstream train)',
    });
    const r = await run(ws, P, '-R', 'train');
    assert.deepEqual(finalStates(r.events), { prep: 'cached', train: 'done', report: 'done' });
    assert.deepEqual(runReasons(r.events), {
      train: 'forced (--force-downstream train)',
      report: 'forced (--force-downstream train)',
    });
    // --force STAGE alone still forces only that stage (downstream stays cached: identical output).
    const one = await run(ws, P, '--force', 'train');
    assert.deepEqual(finalStates(one.events), { prep: 'cached', train: 'done', report: 'cached' });
    const typo = await runCli(ws, ['run', P, '--force', 'al']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /--force al: no stage named 'al'; did you mean 'all'\?/);
    assert.match(typo.stderr, /stages: prep, train, report; or 'all'/);
    const down = await runCli(ws, ['run', P, '-R', 'nope']);
    assert.equal(down.code, 2);
    assert.match(down.stderr, /--force-downstream nope: no stage named 'nope'/);
  } finally {
    removeWorkspace(ws);
  }
});

test('run.json and experiment.json record the git commit of the workspace and whether it was dirty', async () => {
  const ws = makeWorkspace(files);
  const git = (...args: string[]) =>
    execFileSync('git', ['-C', ws, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { encoding: 'utf8' });
  try {
    const outside = await run(ws, P);
    assert.equal(outside.code, 0);
    const runJson = (r: { events: Event[] }) => {
      const end = r.events.find((e) => e.type === 'run-end') as { recordPath: string };
      return JSON.parse(readFileSync(join(ws, end.recordPath), 'utf8')) as { git: unknown };
    };
    assert.equal(runJson(outside).git, null, 'not a git repository');
    git('init', '-q');
    writeFileSync(join(ws, '.gitignore'), 'results/\n.facepipe/\n');
    git('add', '.');
    git('commit', '-q', '-m', 'x');
    const head = git('rev-parse', 'HEAD').trim();
    const clean = await run(ws, P);
    assert.deepEqual(runJson(clean).git, { commit: head, dirty: false });
    assert.deepEqual(experiment(ws).git, { commit: head, dirty: false });
    writeFileSync(join(ws, 'data/words.txt'), 'gamma\n');
    const dirty = await run(ws, P);
    assert.deepEqual(runJson(dirty).git, { commit: head, dirty: true }, 'a tracked file changed');
  } finally {
    removeWorkspace(ws);
  }
});

test('a sweep ends by naming its best point on the selected metric (the first headline one, or --metric)', async () => {
  const ws = makeWorkspace(files);
  try {
    const sweep = ['--sweep', 'train.env.SCORE=0.2,0.9,0.5', '--sweep', 'train.env.LOSS=3,1'];
    const plain = await runCli(ws, ['run', P, ...sweep, '--progress', 'plain']);
    assert.equal(plain.code, 0, plain.stderr);
    const best = /best point by train\.score \(max\) of 6 experiments: (wf-\w+)\s+(.*?)\s+train\.score 0\.9$/m.exec(
      plain.stdout,
    );
    assert.ok(best, plain.stdout.slice(-800));
    assert.match(best[2], /train\.env\.SCORE=0\.9 train\.env\.LOSS=3/, 'the first of the tied points');
    const low = await runCli(ws, ['run', P, ...sweep, '--progress', 'plain', '--metric', 'loss']);
    assert.match(
      low.stdout,
      /best point by train\.loss \(min\) of 6 experiments: wf-\w+\s+train\.env\.SCORE=0\.2 train\.env\.LOSS=1\s+train\.loss 1$/m,
    );
    const json = await run(ws, P, ...sweep, '--metric', 'train.score:min');
    const ev = json.events.find((e) => e.type === 'sweep-best') as Extract<Event, { type: 'sweep-best' }>;
    assert.deepEqual(
      { metric: ev.metric, goal: ev.goal, value: ev.value, scored: ev.scored, point: ev.point },
      {
        metric: 'train.score',
        goal: 'min',
        value: 0.2,
        scored: 6,
        point: { 'train.env.SCORE': 0.2, 'train.env.LOSS': 3 },
      },
    );
    const bad = await runCli(ws, ['run', P, ...sweep, '--metric', 'nope']);
    assert.match(bad.stderr, /--metric nope: no such metric/);
  } finally {
    removeWorkspace(ws);
  }
});

test('exps apply NAME writes its params as a config; running with it finds every stage cached', async () => {
  const ws = makeWorkspace(files);
  try {
    const sweep = await run(ws, P, '--sweep', 'train.env.SCORE=0.2,0.9');
    assert.equal(sweep.code, 0, sweep.stderr);
    const name = readdirSync(join(ws, 'results')).find(
      (n) => n.startsWith('wf-') && experiment(ws, n).stages.train.metrics.score === 0.9,
    )!;
    const apply = await runCli(ws, ['exps', 'apply', name, '--out', 'configs/best.yaml']);
    assert.equal(apply.code, 0, apply.stderr);
    assert.match(apply.stdout, /wrote configs\/best\.yaml/);
    const again = await run(ws, P, '--config', 'configs/best.yaml');
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(finalStates(again.events), { prep: 'cached', train: 'cached', report: 'cached' });
    assert.equal(experiment(ws).stages.train.metrics.score, 0.9);
    const outside = await runCli(ws, ['exps', 'apply', name, '--out', '../x.yaml']);
    assert.equal(outside.code, 2, 'nothing is written outside the workspace');
  } finally {
    removeWorkspace(ws);
  }
});

test('after an interrupted run the experiment keeps its last complete figures, marked', async () => {
  const ws = makeWorkspace(files);
  try {
    assert.equal((await run(ws, P)).code, 0);
    const first = experiment(ws);
    writeFileSync(join(ws, 'hold'), '');
    const events: Event[] = [];
    const { child, done } = startCli(ws, ['run', P, '--progress', 'json', '--set', 'train.env.SCORE=0.8'], (e) =>
      events.push(e),
    );
    await waitFor(
      () => events.some((e) => e.type === 'stage-state' && e.stage === 'train' && e.state === 'running'),
      20_000,
      'train to start',
    );
    child.kill('SIGINT');
    const r = await done;
    assert.equal(r.code, 130, r.stderr);
    const after = experiment(ws);
    assert.equal(after.stages.train.state, 'done');
    assert.deepEqual(after.stages.train.kept, { run: first.lastRun, state: 'interrupted' });
    assert.equal(after.stages.train.metrics.score, 0.5, 'the last complete figures');
    assert.equal(after.stages.train.params.env && (after.stages.train.params.env as { SCORE: number }).SCORE, 0.5);
    const exps = await runCli(ws, ['exps']);
    assert.match(exps.stdout, /^wf\s+interrupted: train\s+train,report\s+0\.5\s+1\s/m);
    assert.match(exps.stdout, /kept: stages showing their last complete figures/);
  } finally {
    removeWorkspace(ws);
  }
});

test('watch prints the headline metrics after each run', async () => {
  const ws = makeWorkspace(files);
  const w = startCli(ws, ['watch', P, '--debounce', '100']);
  let out = '';
  w.child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  try {
    await waitFor(() => /\[watch\] train: score 0\.5, loss 1$/m.test(out), 20_000, 'the first figures');
    writeFileSync(join(ws, P), PIPELINE.replace('SCORE: 0.5', 'SCORE: 0.25'));
    await waitFor(() => /\[watch\] train: score 0\.25, loss 1$/m.test(out), 20_000, 'the figures of the rerun');
  } finally {
    w.child.kill('SIGINT');
    await w.done;
    removeWorkspace(ws);
  }
});
