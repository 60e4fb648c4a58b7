// Successive halving through the CLI on the tiny config: 4 points, eta 2, rungs of 1, 2 and 4 epochs. Every point
// trains 1 epoch, the best 2 go on from their cached epoch (no epoch trained twice), the best of those to 4; only it
// is pruned and evaluated; exps shows rungs and standings; a rerun is all cached and ranks the same; kill -9 at
// chosen moments (mid-training in rung 2, between rungs, in the last rung's prune) and a plain rerun give the
// uninterrupted sweep's bytes and standings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '../../src/core/hash.js';
import {
  finalStates,
  listFiles,
  makeWorkspace,
  removeWorkspace,
  repoRoot,
  runCli,
  startCli,
  type CliResult,
  type Event,
} from '../engine/rig.js';

function faceWorkspace(): string {
  const ws = makeWorkspace();
  for (const d of ['pipelines', 'configs', 'data/cmu-faces'])
    cpSync(join(repoRoot(), d), join(ws, d), { recursive: true });
  return ws;
}

const POINTS = ['0.0001', '0.001', '0.01', '0.03'];
const ARGS = [
  'run',
  '--config',
  'configs/tiny.yaml',
  '--backend',
  'wasm',
  '--progress',
  'json',
  '--sweep',
  `triarchy.optimizer.lr=${POINTS.join(',')}`,
  '--sweep-method',
  'halving',
  '--eta',
  '2',
  '--min-epochs',
  '1',
  '--max-epochs',
  '4',
];

type Rung = Extract<Event, { type: 'sweep-rung' }>;
type Ranking = Extract<Event, { type: 'sweep-ranking' }>;

/** Each event with the rung it belongs to and the experiment of its stage (a one-experiment run's ids are bare). */
function byRung(events: Event[]) {
  let rung: Rung | undefined;
  return events.flatMap((e) => {
    if (e.type === 'sweep-rung') rung = e;
    if (!rung || !('stage' in e) || typeof e.stage !== 'string') return [];
    const [exp, stage] = e.stage.includes('/') ? e.stage.split('/') : [rung.experiments[0], e.stage];
    return [{ rung: rung.rung, exp, stage, e }];
  });
}

/** sha256 of every output under results/ (run records and summaries, which name runs and times, left out). */
function digests(ws: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of listFiles(join(ws, 'results')))
    if (!f.startsWith('runs/') && !f.endsWith('/experiment.json'))
      out[f] = sha256(readFileSync(join(ws, 'results', f)));
  return out;
}

/** Each experiment's halving standing, from its experiment.json. */
function standings(ws: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of readdirSync(join(ws, 'results')))
    if (name !== 'runs')
      out[name] = (
        JSON.parse(readFileSync(join(ws, 'results', name, 'experiment.json'), 'utf8')) as { sweep: unknown }
      ).sweep;
  return out;
}

const rankings = (events: Event[]) =>
  events
    .filter((e): e is Ranking & { time: string } => e.type === 'sweep-ranking')
    .map((e) => ({ rung: e.rung, epochs: e.epochs, metric: e.metric, ranked: e.ranked }));

const STATUS = ['status', ...ARGS.slice(1, ARGS.indexOf('--backend')), ...ARGS.slice(ARGS.indexOf('--sweep'))];

/** status before the sweep: rung 1's plan, later rungs follow from its ranking. */
async function statusBefore(ws: string): Promise<void> {
  const planned = await runCli(ws, STATUS);
  assert.equal(planned.code, 0, planned.stderr);
  assert.match(
    planned.stdout,
    /halving: 4 points, triarchy\.epochs 1 -> 2 -> 4 \(4, 2, 1 candidates\), ranked by triarchy\.val_auc \(max\), eta 2/,
  );
  assert.match(planned.stdout, /rung 1 \(1 epoch, 4 experiments\):\n(.*\n){11}/);
  assert.match(planned.stdout, /rung 2 \(2 epochs\): its points follow from the ranking of rung 1\n/);
}

/** The rungs of the first sweep: what trained, what went on, what was evaluated. Returns the finalist. */
function checkRungs(r: CliResult): string {
  const rungs = r.events.filter((e): e is Rung & { time: string } => e.type === 'sweep-rung');
  assert.deepEqual(
    rungs.map((x) => [x.epochs, x.experiments.length]),
    [
      [1, 4],
      [2, 2],
      [4, 1],
    ],
  );
  const ranked = rankings(r.events);
  assert.deepEqual(
    ranked.map((x) => x.ranked.map((y) => y.state)),
    [['promoted', 'promoted', 'stopped', 'stopped'], ['promoted', 'stopped'], ['final']],
  );
  // Promoted = the best of the rung, in its order.
  for (const [i, x] of ranked.slice(0, 2).entries())
    assert.deepEqual(
      rungs[i + 1].experiments.slice().sort(),
      x.ranked
        .filter((y) => y.state === 'promoted')
        .map((y) => y.experiment)
        .sort(),
    );
  const staged = byRung(r.events);
  // No epoch trained twice: each (experiment, epoch) once; 4 x 1 + 2 x 1 + 1 x 2 = 8 epochs in all.
  const trained = staged.flatMap((x) =>
    x.stage === 'triarchy' && x.e.type === 'stage-steps' ? [`${x.exp}@${x.e.epoch}`] : [],
  );
  assert.deepEqual([...new Set(trained)].length, 8, `epochs trained: ${[...new Set(trained)].join(' ')}`);
  const continued = staged.filter(
    (x) => x.stage === 'triarchy' && x.e.type === 'stage-state' && x.e.state === 'running' && x.rung > 1,
  );
  assert.deepEqual(
    continued.map((x) => (x.e as { reason: string }).reason),
    [
      'epochs 1 -> 2, continuing from the cached epoch 1',
      'epochs 1 -> 2, continuing from the cached epoch 1',
      'epochs 2 -> 4, continuing from the cached epoch 2',
    ],
  );
  // Only the last rung prunes and evaluates: the test set chooses nothing.
  const evaluated = staged.filter((x) => x.stage === 'evaluate' && x.e.type === 'stage-state' && x.e.state === 'done');
  const finalist = rungs[2].experiments[0];
  assert.deepEqual(
    evaluated.map((x) => [x.rung, x.exp]),
    [[3, finalist]],
  );
  const best = r.events.find((e) => e.type === 'sweep-best') as Extract<Event, { type: 'sweep-best' }>;
  assert.deepEqual([best.metric, best.goal, best.experiment], ['triarchy.val_auc', 'max', finalist]);
  return finalist;
}

/** exps and the report show each point's rung and standing. */
async function checkTables(ws: string, ranked: ReturnType<typeof rankings>, finalist: string): Promise<void> {
  const exps = await runCli(ws, ['exps', '--json', '--columns', 'rung,halving']);
  const rows = JSON.parse(exps.stdout) as Array<{ experiment: string; rung: number; halving: string }>;
  assert.equal(rows.length, 4);
  const row = (name: string) => rows.find((x) => x.experiment === name)!;
  assert.deepEqual([row(finalist).rung, row(finalist).halving], [4, 'final: rank 1 of 1']);
  const stoppedAt1 = ranked[0].ranked.filter((y) => y.state === 'stopped').map((y) => y.experiment);
  for (const name of stoppedAt1) assert.match(row(name).halving, /^stopped at rung 1\/3: rank [34] of 4$/);
  assert.equal(row(stoppedAt1[0]).rung, 1);
  assert.match(
    JSON.stringify(standings(ws)[stoppedAt1[0]]),
    /stopped at 1 epoch: rank 3 of 4 by triarchy\.val_auc [0-9.]+; the best 2 went on to 2 epochs/,
  );
  // The report's table has the same columns; the whole reason is on hover.
  const report = await runCli(ws, ['report']);
  assert.equal(report.code, 0, report.stderr);
  const html = readFileSync(join(ws, 'results/report.html'), 'utf8');
  rmSync(join(ws, 'results/report.html')); // not a sweep output: the digests leave it out
  assert.match(html, />rung<\/th>/);
  assert.match(
    html,
    /<td title="stopped at 1 epoch: rank [34] of 4 by triarchy\.val_auc [0-9.]+; the best 2 went on to 2 epochs">stopped at rung 1\/3: rank [34] of 4<\/td>/,
  );
}

/** The finalist's model is what a straight 4-epoch run of its point gives. */
async function checkStraight(ws: string, finalist: string): Promise<void> {
  const fresh = faceWorkspace();
  try {
    const summary = readFileSync(join(ws, 'results', finalist, 'experiment.json'), 'utf8');
    const lr = String((JSON.parse(summary) as { point: Record<string, number> }).point['triarchy.optimizer.lr']);
    assert.ok(POINTS.map(Number).includes(Number(lr)), `the finalist's point names its lr (${lr})`);
    const run = ['run', '--config', 'configs/tiny.yaml', '--backend', 'wasm', '--progress', 'json'];
    const straight = await runCli(
      fresh,
      [...run, '--until', 'triarchy', '--set', `triarchy.optimizer.lr=${lr}`, '--set', 'triarchy.epochs=4'],
      300_000,
    );
    assert.equal(straight.code, 0, straight.stderr);
    const model = (root: string, exp: string) => {
      const dir = join(root, 'results', exp, 'triarchy/model');
      return Object.fromEntries(listFiles(dir).map((f) => [f, sha256(readFileSync(join(dir, f)))]));
    };
    assert.deepEqual(model(ws, finalist), model(fresh, 'face-verification'));
  } finally {
    removeWorkspace(fresh);
  }
}

/** kill -9 of the process group when `when` first holds, then a plain rerun: the uninterrupted sweep's results. */
async function crashAndRerun(
  what: string,
  when: (e: Event, rung: number) => boolean,
  expected: { digests: Record<string, string>; standings: Record<string, unknown>; ranked: unknown },
): Promise<void> {
  const cw = faceWorkspace();
  try {
    let rung = 0;
    let killed = false;
    const { done } = startCli(
      cw,
      ARGS,
      (e, c) => {
        if (e.type === 'sweep-rung') rung = e.rung;
        if (!killed && when(e, rung)) {
          killed = true;
          process.kill(-c.pid!, 'SIGKILL');
        }
      },
      { detached: true },
    );
    const k = await done;
    assert.ok(killed && k.signal === 'SIGKILL', `${what}: the kill landed (${k.code} ${k.signal})`);
    const rerun = await runCli(cw, ARGS, 600_000);
    assert.equal(rerun.code, 0, `${what}: ${rerun.stderr}`);
    assert.deepEqual(rankings(rerun.events), expected.ranked, `${what}: the same points promoted`);
    assert.deepEqual(digests(cw), expected.digests, `${what}: the outputs of an uninterrupted sweep`);
    assert.deepEqual(standings(cw), expected.standings, `${what}: the same standings`);
    const temps = listFiles(cw).filter((f) => /\.tmp-\d+-|\.fpck\.\d+\.tmp$/.test(f));
    assert.deepEqual(temps, [], `${what}: no temporary file left`);
  } finally {
    removeWorkspace(cw);
  }
}

test('halving on the tiny config: rungs, promotion from cached epochs, standings, a cached rerun, kill -9 anywhere', async (t) => {
  const ws = faceWorkspace();
  try {
    await statusBefore(ws);
    const r = await runCli(ws, ARGS, 600_000);
    assert.equal(r.code, 0, r.stderr);
    // Once the rungs are cached, status ranks them from the cache and shows every rung.
    const replanned = await runCli(ws, STATUS);
    assert.match(
      replanned.stdout,
      /rung 3 \(4 epochs, 1 experiment\):\nsplit +cached *\npretext +cached *\ntriarchy +cached *\nprune +cached *\nevaluate +cached/,
    );
    const finalist = checkRungs(r);
    const ranked = rankings(r.events);
    await checkTables(ws, ranked, finalist);
    await checkStraight(ws, finalist);

    // A rerun: every stage of every rung cached, the same ranking.
    const again = await runCli(ws, ARGS, 300_000);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(Object.values(finalStates(again.events)).every((s) => s === 'cached'));
    assert.deepEqual(rankings(again.events), ranked);

    const expected = { digests: digests(ws), standings: standings(ws), ranked };
    const moments: Array<[string, (e: Event, rung: number) => boolean]> = [
      ['training in rung 2', (e, rung) => rung === 2 && e.type === 'stage-steps'],
      ['just after rung 1 is ranked', (e) => e.type === 'sweep-ranking' && e.rung === 1],
      ['the last rung prunes', (e) => e.type === 'stage-state' && e.state === 'running' && e.stage === 'prune'],
    ];
    for (const [what, when] of moments) {
      await crashAndRerun(what, when, expected);
      t.diagnostic(`${what}: identical after a plain rerun`);
    }
  } finally {
    removeWorkspace(ws);
  }
});
