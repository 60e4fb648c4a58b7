// Caching semantics through the CLI: what reruns after which change, and the reasons status/run give.
// The tests share one workspace and run in order; each states the state it starts from.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sealJson, unsealJson } from '../../src/core/sealed.js';
import {
  finalStates,
  makeWorkspace,
  parseStatus,
  removeWorkspace,
  run,
  runCli,
  runReasons,
  writeFiles,
} from './rig.js';

const PIPELINE = `name: cache
stages:
  a:
    kind: command
    inputs: { text: { path: data/words.txt } }
    params:
      cmd: ${JSON.stringify('cat "$FACEPIPE_IN_text" > "$FACEPIPE_OUT_o"; echo "$SUFFIX" >> "$FACEPIPE_OUT_o"')}
      env: { SUFFIX: x }
      outputs: { o: file }
  b:
    kind: command
    inputs: { text: { path: data/words.txt } }
    params:
      cmd: tr a-z A-Z < {inputs.text} > {outputs.o}
      outputs: { o: file }
  c:
    kind: command
    inputs: { a: a.o, b: b.o }
    params:
      cmd: cat {inputs.a} {inputs.b} > {outputs.r}/r.txt
      outputs: { r: dir }
`;

const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE, 'data/words.txt': 'alpha beta\n' });
after(() => removeWorkspace(ws));
const P = 'pipelines/p.yaml';
const status = async (...extra: string[]) => {
  const r = await runCli(ws, ['status', P, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return parseStatus(r.stdout);
};
const report = () => readFileSync(join(ws, 'results/cache/c/r/r.txt'), 'utf8');
/** The value of a sealed state file (records, last states are sealed: a digest of their own content). */
function stateValue(path: string): unknown {
  const u = unsealJson(readFileSync(path, 'utf8'));
  assert.ok(u.ok, `${path} is sealed`);
  return u.value;
}

const storeRecords = () => readdirSync(join(ws, '.facepipe/store/stages')).length;

test('first run runs every stage ("never run"); the second run is fully cached', async () => {
  const st = await status();
  assert.deepEqual(Object.fromEntries(Object.entries(st).map(([k, v]) => [k, v.action])), {
    a: 'will run',
    b: 'will run',
    c: 'will run',
  });
  assert.deepEqual(
    Object.values(st).map((s) => s.reason),
    ['never run', 'never run', 'never run'],
  );
  const first = await run(ws, P);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual(finalStates(first.events), { a: 'done', b: 'done', c: 'done' });
  assert.deepEqual(runReasons(first.events), { a: 'never run', b: 'never run', c: 'never run' });
  assert.equal(report(), 'alpha beta\nx\nALPHA BETA\n');
  const second = await run(ws, P);
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(finalStates(second.events), { a: 'cached', b: 'cached', c: 'cached' });
  assert.deepEqual(runReasons(second.events), {});
  assert.deepEqual(
    Object.values(await status()).map((s) => s.action),
    ['cached', 'cached', 'cached'],
  );
  const end = second.events.at(-1)!;
  assert.equal(end.type, 'run-end');
  assert.equal(end.type === 'run-end' && end.status, 'ok');
});

test('--set reruns exactly the changed stage and its downstream; status names the change', async () => {
  const st = await status('--set', 'a.env.SUFFIX=y');
  assert.equal(st.a.action, 'will run');
  assert.equal(st.a.reason, 'params changed: a.env.SUFFIX "x" -> "y"');
  assert.equal(st.b.action, 'cached');
  assert.equal(st.c.action, 'may run');
  assert.match(st.c.reason, /input may change: a will rerun/);
  const r = await run(ws, P, '--set', 'a.env.SUFFIX=y');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(finalStates(r.events), { a: 'done', b: 'cached', c: 'done' });
  assert.deepEqual(runReasons(r.events), { a: 'params changed: a.env.SUFFIX "x" -> "y"', c: 'input changed: a' });
  assert.equal(report(), 'alpha beta\ny\nALPHA BETA\n');
  const again = await run(ws, P, '--set', 'a.env.SUFFIX=y');
  assert.deepEqual(finalStates(again.events), { a: 'cached', b: 'cached', c: 'cached' });
});

test('--config param change reruns the affected stages; going back to earlier params is a cache hit', async () => {
  writeFiles(ws, { 'configs/z.yaml': 'a:\n  env:\n    SUFFIX: z\n' });
  const st = await status('--config', 'configs/z.yaml');
  assert.equal(st.a.reason, 'params changed: a.env.SUFFIX "y" -> "z"');
  const r = await run(ws, P, '--config', 'configs/z.yaml');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(finalStates(r.events), { a: 'done', b: 'cached', c: 'done' });
  assert.equal(report(), 'alpha beta\nz\nALPHA BETA\n');
  // --set wins over --config
  const both = await run(ws, P, '--config', 'configs/z.yaml', '--set', 'a.env.SUFFIX=y');
  assert.deepEqual(finalStates(both.events), { a: 'cached', b: 'cached', c: 'cached' });
  assert.equal(
    report(),
    'alpha beta\ny\nALPHA BETA\n',
    'results/ shows the outputs of the latest run, restored from the cache',
  );
  const base = await run(ws, P);
  assert.deepEqual(finalStates(base.events), { a: 'cached', b: 'cached', c: 'cached' });
  assert.equal(report(), 'alpha beta\nx\nALPHA BETA\n');
});

test('early cutoff: an upstream rerun with byte-identical outputs leaves downstream cached', async () => {
  const st = await status('--set', 'a.env.UNUSED=foo');
  assert.equal(st.a.reason, 'params changed: a.env.UNUSED (unset) -> "foo"');
  assert.equal(st.c.action, 'may run');
  const r = await run(ws, P, '--set', 'a.env.UNUSED=foo');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(finalStates(r.events), { a: 'done', b: 'cached', c: 'cached' });
});

test('--force STAGE reruns it; downstream stays cached when its output is identical', async () => {
  const before = storeRecords();
  const st = await status('--force', 'a');
  assert.equal(st.a.reason, 'forced (--force)');
  const r = await run(ws, P, '--force', 'a');
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(finalStates(r.events), { a: 'done', b: 'cached', c: 'cached' });
  assert.deepEqual(runReasons(r.events), { a: 'forced (--force)' });
  assert.equal(storeRecords(), before, 'a forced rerun replaces its record, adds none');
  const c = await run(ws, P, '--force', 'c');
  assert.deepEqual(finalStates(c.events), { a: 'cached', b: 'cached', c: 'done' });
  const bad = await run(ws, P, '--force', 'nope');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--force nope: no stage named 'nope'/);
});

test('a file input edited in place is detected, even at the same size with its mtime put back', async () => {
  const file = join(ws, 'data/words.txt');
  writeFileSync(file, 'gamma delta\n');
  const T = new Date('2020-01-02T03:04:05Z');
  utimesSync(file, T, T);
  const st = await status();
  assert.equal(st.a.reason, 'input changed: data/words.txt');
  assert.equal(st.b.reason, 'input changed: data/words.txt');
  const r = await run(ws, P);
  assert.deepEqual(finalStates(r.events), { a: 'done', b: 'done', c: 'done' });
  assert.equal(runReasons(r.events).c, 'input changed: a, b');
  assert.equal(report(), 'gamma delta\nx\nGAMMA DELTA\n');

  const { size, mtimeNs } = statSync(file, { bigint: true });
  writeFileSync(file, 'gamma DELTA\n');
  utimesSync(file, T, T);
  assert.equal(statSync(file, { bigint: true }).size, size);
  assert.equal(statSync(file, { bigint: true }).mtimeNs, mtimeNs, 'same size, same mtime: only ctime tells');
  const r2 = await run(ws, P);
  assert.deepEqual(finalStates(r2.events), { a: 'done', b: 'done', c: 'done' });
  assert.deepEqual(
    runReasons(r2.events),
    { a: 'input changed: data/words.txt', b: 'input changed: data/words.txt', c: 'input changed: a' },
    "b uppercases, so its output and c's input b are unchanged",
  );
  assert.equal(report(), 'gamma DELTA\nx\nGAMMA DELTA\n');
});

/** The store object holding the current output of stage a. */
function objectOfA(): string {
  const exp = JSON.parse(readFileSync(join(ws, 'results/cache/experiment.json'), 'utf8')) as {
    stages: Record<string, { key: string }>;
  };
  const rec = stateValue(join(ws, '.facepipe/store/stages', `${exp.stages.a.key}.json`)) as {
    outputs: { o: { digest: string } };
  };
  const d = rec.outputs.o.digest;
  return join(ws, '.facepipe/store/objects', d.slice(0, 2), d.slice(2));
}

test('a corrupted store object is detected ("cached output missing or corrupt") and the stage recomputed', async () => {
  const obj = objectOfA();
  const good = readFileSync(obj, 'utf8');
  assert.equal(statSync(obj).mode & 0o777, 0o444, 'store objects are read-only');
  writeFileSync(obj, good.replace('gamma', 'GAMMA')); // root may write a 0444 file; same size
  const st = await status();
  assert.equal(st.a.action, 'will run');
  assert.equal(st.a.reason, 'cached output missing or corrupt');
  const r = await run(ws, P);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(finalStates(r.events), { a: 'done', b: 'cached', c: 'cached' });
  assert.equal(runReasons(r.events).a, 'cached output missing or corrupt');
  assert.equal(readFileSync(obj, 'utf8'), good, 'the object is rewritten with the right bytes');
  assert.equal(readFileSync(join(ws, 'results/cache/a/o'), 'utf8'), good);
});

test('a missing store object is detected and the stage recomputed', async () => {
  const obj = objectOfA();
  chmodSync(obj, 0o644);
  rmSync(obj);
  const st = await status();
  assert.equal(st.a.reason, 'cached output missing or corrupt');
  const r = await run(ws, P);
  assert.deepEqual(finalStates(r.events), { a: 'done', b: 'cached', c: 'cached' });
  assert.ok(statSync(obj).isFile());
});

test('a corrupted file inside a folder output is detected too', async () => {
  const exp = JSON.parse(readFileSync(join(ws, 'results/cache/experiment.json'), 'utf8')) as {
    stages: Record<string, { key: string }>;
  };
  const rec = stateValue(join(ws, '.facepipe/store/stages', `${exp.stages.c.key}.json`)) as {
    outputs: { r: { type: string; digest: string } };
  };
  assert.equal(rec.outputs.r.type, 'dir');
  const manifest = JSON.parse(
    readFileSync(
      join(ws, '.facepipe/store/objects', rec.outputs.r.digest.slice(0, 2), rec.outputs.r.digest.slice(2)),
      'utf8',
    ),
  ) as { entries: Array<{ path: string; digest: string }> };
  const inner = manifest.entries.find((e) => e.path === 'r.txt')!;
  const obj = join(ws, '.facepipe/store/objects', inner.digest.slice(0, 2), inner.digest.slice(2));
  writeFileSync(obj, 'garbage');
  const st = await status();
  assert.equal(st.c.reason, 'cached output missing or corrupt');
  assert.equal(st.a.action, 'cached');
  const r = await run(ws, P);
  assert.deepEqual(finalStates(r.events), { a: 'cached', b: 'cached', c: 'done' });
  assert.notEqual(readFileSync(obj, 'utf8'), 'garbage');
});

test('an edited file under results/ is restored from the cache without rerunning', async () => {
  const out = join(ws, 'results/cache/b/o');
  const good = readFileSync(out, 'utf8');
  writeFileSync(out, 'scribbled over\n');
  rmSync(join(ws, 'results/cache/c'), { recursive: true });
  const r = await run(ws, P);
  assert.deepEqual(finalStates(r.events), { a: 'cached', b: 'cached', c: 'cached' });
  assert.equal(readFileSync(out, 'utf8'), good);
  assert.equal(report(), 'gamma DELTA\nx\nGAMMA DELTA\n');
});

test('a stage added to the pipeline is "never run"; the others stay cached', async () => {
  writeFiles(ws, {
    'pipelines/p.yaml':
      PIPELINE +
      '  d:\n    kind: command\n    inputs: { r: c.r }\n    params:\n      cmd: cat {inputs.r}/r.txt | wc -l > {outputs.n}\n      outputs: { n: file }\n',
  });
  const st = await status();
  assert.equal(st.d.reason, 'never run');
  const r = await run(ws, P);
  assert.deepEqual(finalStates(r.events), { a: 'cached', b: 'cached', c: 'cached', d: 'done' });
  assert.equal(readFileSync(join(ws, 'results/cache/d/n'), 'utf8').trim(), '3');
});

test('status explains a kind version change (simulated: the last run recorded an older version of the kind)', async () => {
  const lastFile = join(ws, '.facepipe/state/last/cache.json');
  const last = stateValue(lastFile) as Record<string, { key: string; material: { kindVersion: string } }>;
  last.b.material.kindVersion = '0';
  writeFileSync(lastFile, sealJson(last)); // sealed, as an older facepipe would have written it
  // A new kind version means a new key: its cache entry does not exist yet.
  rmSync(join(ws, '.facepipe/store/stages', `${last.b.key}.json`));
  const st = await status();
  assert.equal(st.b.action, 'will run');
  assert.equal(st.b.reason, 'kind version changed: 0 -> 1');
  assert.equal(st.a.action, 'cached');
});

test('an executable file output stays executable when restored from the cache', async () => {
  const ws = makeWorkspace({
    'pipelines/p.yaml': `stages:\n  tool:\n    kind: command\n    params: { cmd: 'printf "#!/bin/sh\\\\necho hi\\\\n" > {outputs.tool} && chmod +x {outputs.tool}', outputs: { tool: file } }\n`,
  });
  try {
    assert.equal((await run(ws, 'pipelines/p.yaml')).code, 0);
    const out = join(ws, 'results/p/tool/tool');
    assert.ok(statSync(out).mode & 0o100, 'executable after the run');
    rmSync(join(ws, 'results/p'), { recursive: true });
    const again = await run(ws, 'pipelines/p.yaml');
    assert.equal(finalStates(again.events).tool, 'cached');
    assert.ok(statSync(out).mode & 0o100, 'executable after a restore');
  } finally {
    removeWorkspace(ws);
  }
});
