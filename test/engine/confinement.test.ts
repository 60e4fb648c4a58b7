// Key and path holes (issue 8, points 10 and 11): state folders symlinked out of the workspace are refused, a store
// elsewhere is an explicit setting (FACEPIPE_STORE), `report --out` is the user's explicit choice while the default
// report path is confined, and a split manifest outside its dataset input (read but not hashed) is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STORE_ENV } from '../../src/execute/workspace.js';
import { finalStates, makeWorkspace, removeWorkspace, run, runCli } from './rig.js';

const PIPELINE = `name: conf
stages:
  a:
    kind: command
    params: { cmd: "echo a > {outputs.o}", outputs: { o: file } }
`;

function withDirs(fn: (ws: string, outside: string) => Promise<void>) {
  return async () => {
    const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
    const outside = mkdtempSync(join(tmpdir(), 'facepipe-outside-'));
    try {
      await fn(ws, outside);
    } finally {
      removeWorkspace(ws);
      rmSync(outside, { recursive: true, force: true });
    }
  };
}

for (const [link, shown] of [
  ['.facepipe', '.facepipe/lock'],
  ['.facepipe/state', '.facepipe/state/yaml/x'],
  ['.facepipe/store', '.facepipe/store/objects/x'],
  ['.facepipe/store/objects', '.facepipe/store/objects/x'],
  ['.facepipe/work', '.facepipe/work/x'],
] as const)
  test(
    `${link} as a symlink out of the workspace is refused before anything is written`,
    withDirs(async (ws, outside) => {
      mkdirSync(join(ws, link, '..'), { recursive: true });
      symlinkSync(outside, join(ws, link));
      for (const args of [['run', 'pipelines/p.yaml', '--progress', 'json'], ['status', 'pipelines/p.yaml'], ['gc']]) {
        const r = await runCli(ws, args);
        assert.equal(r.code, 2, `${args[0]}: ${r.stderr}`);
        assert.match(
          r.stderr,
          new RegExp(`error\\[unsafe-path\\]: [\\w ]+ path "${shown}" goes through a symlink out of the workspace`),
        );
        assert.match(r.stderr, /fix: .*FACEPIPE_STORE/);
      }
      assert.deepEqual(readdirSync(outside), [], 'nothing written through the link');
      assert.equal(existsSync(join(ws, 'results')), false);
    }),
  );

test(
  'a dangling .facepipe symlink is refused too',
  withDirs(async (ws, outside) => {
    symlinkSync(join(outside, 'not-yet'), join(ws, '.facepipe'));
    const r = await runCli(ws, ['run', 'pipelines/p.yaml', '--progress', 'json']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /goes through a symlink out of the workspace .*dangling/);
    assert.deepEqual(readdirSync(outside), []);
  }),
);

test(
  'a store outside the workspace is an explicit setting: FACEPIPE_STORE',
  withDirs(async (ws, outside) => {
    const store = join(outside, 'shared-store');
    process.env[STORE_ENV] = store;
    try {
      const r = await run(ws, 'pipelines/p.yaml');
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readdirSync(join(store, 'stages')).length, 1, 'the record is in the shared store');
      assert.ok(readdirSync(join(store, 'objects')).length > 0, 'the objects are in the shared store');
      assert.equal(existsSync(join(ws, '.facepipe/store')), false, 'nothing in the workspace store');
      // A second workspace using the same store finds the stage cached.
      const ws2 = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
      try {
        const again = await run(ws2, 'pipelines/p.yaml');
        assert.equal(again.code, 0, again.stderr);
        assert.deepEqual(finalStates(again.events), { a: 'cached' });
      } finally {
        removeWorkspace(ws2);
      }
      // Inside the named store, its own folders may not lead elsewhere either.
      const elsewhere = mkdtempSync(join(tmpdir(), 'facepipe-elsewhere-'));
      try {
        rmSync(join(store, 'stages'), { recursive: true });
        symlinkSync(elsewhere, join(store, 'stages'));
        const bad = await run(ws, 'pipelines/p.yaml');
        assert.equal(bad.code, 2, bad.stderr);
        assert.match(bad.stderr, /store path \(FACEPIPE_STORE\) ".*stages\/x" goes through a symlink out of/);
        assert.deepEqual(readdirSync(elsewhere), []);
      } finally {
        rmSync(elsewhere, { recursive: true, force: true });
      }
    } finally {
      delete process.env[STORE_ENV];
    }
  }),
);

test(
  'report: the default path may not go through a symlink out; --out is the explicit choice of a path',
  withDirs(async (ws, outside) => {
    assert.equal((await run(ws, 'pipelines/p.yaml')).code, 0);
    const results = join(ws, 'results');
    const moved = join(outside, 'results');
    // results/ itself turned into a link out of the workspace: the default report is refused.
    mkdirSync(moved);
    rmSync(results, { recursive: true });
    symlinkSync(moved, results);
    const r = await runCli(ws, ['report']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /error\[unsafe-path\]: report "results\/report\.html" goes through a symlink out of the workspace/,
    );
    assert.deepEqual(readdirSync(moved), []);
    const chosen = join(outside, 'chosen', 'report.html');
    const ok = await runCli(ws, ['report', '--out', chosen]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(existsSync(chosen), '--out writes where the user said');
  }),
);

test('a split manifest outside its dataset input is refused at validation, with file:line:col', async () => {
  const ws = makeWorkspace({
    'pipelines/f.yaml': `name: f
stages:
  split:
    kind: split
    inputs:
      dataset: { path: data/faces }
    params:
      dataset: { manifest: ../faces.csv }
`,
    'data/faces/a/1.pgm': 'P2 1 1 1 0\n',
    'data/faces.csv': 'file,identity\na/1.pgm,a\n',
  });
  try {
    const r = await runCli(ws, ['validate', 'pipelines/f.yaml']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /pipelines\/f\.yaml:8:28: error\[bad-value\]: split\.dataset\.manifest must be a path inside the dataset folder \(relative to it, without "\.\."\), got the string "\.\.\/faces\.csv"/,
    );
    assert.match(r.stderr, /fix: move the manifest into the dataset folder/);
    assert.equal(existsSync(join(ws, '.facepipe/state/yaml')), false, 'nothing written');
  } finally {
    removeWorkspace(ws);
  }
});
