// facepipe writes only inside the workspace: symlinks leading out and '..' experiment names are refused,
// and restoring a cached result never follows a symlink out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finalStates, makeWorkspace, removeWorkspace, run } from './rig.js';

const PIPELINE = `name: safe
stages:
  a:
    kind: command
    params: { cmd: "echo a > {outputs.o}", outputs: { o: file } }
  b:
    kind: command
    inputs: { x: a.o }
    params: { cmd: "cp {inputs.x} {outputs.o}", outputs: { o: file } }
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

test(
  'results/<experiment> as a symlink out of the workspace is refused before anything runs',
  withDirs(async (ws, outside) => {
    mkdirSync(join(ws, 'results'));
    symlinkSync(outside, join(ws, 'results/safe'));
    const r = await run(ws, 'pipelines/p.yaml');
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /error\[unsafe-path\]: results folder "results\/safe" goes through a symlink out of the workspace/,
    );
    assert.deepEqual(readdirSync(outside), []);
    assert.equal(existsSync(join(ws, '.facepipe/store')), false, 'nothing ran');
    assert.equal(existsSync(join(ws, '.facepipe/lock')), false);
  }),
);

test(
  'results/runs as a symlink out of the workspace is refused before anything runs',
  withDirs(async (ws, outside) => {
    mkdirSync(join(ws, 'results'));
    symlinkSync(outside, join(ws, 'results/runs'));
    const r = await run(ws, 'pipelines/p.yaml');
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /error\[unsafe-path\]: run records folder "results\/runs" goes through a symlink out of the workspace/,
    );
    assert.deepEqual(readdirSync(outside), []);
  }),
);

test(
  'a stage folder under results/ that is a symlink out: the stage fails cleanly, nothing is written outside',
  withDirs(async (ws, outside) => {
    mkdirSync(join(ws, 'results/safe'), { recursive: true });
    symlinkSync(outside, join(ws, 'results/safe/b'));
    const r = await run(ws, 'pipelines/p.yaml');
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(finalStates(r.events), { a: 'done', b: 'failed' });
    assert.match(
      r.stderr,
      /stage b failed: output path "results\/safe\/b\/o" goes through a symlink out of the workspace/,
    );
    assert.deepEqual(readdirSync(outside), []);
    const runDir = readdirSync(join(ws, 'results/runs'))[0];
    assert.equal(
      (JSON.parse(readFileSync(join(ws, 'results/runs', runDir, 'run.json'), 'utf8')) as { status: string }).status,
      'failed',
    );
    assert.equal(existsSync(join(ws, '.facepipe/lock')), false);
  }),
);

test(
  'restoring a cached output never follows a symlink put in its place',
  withDirs(async (ws, outside) => {
    const first = await run(ws, 'pipelines/p.yaml');
    assert.equal(first.code, 0, first.stderr);
    const victim = join(outside, 'precious.txt');
    writeFileSync(victim, 'do not touch\n');
    rmSync(join(ws, 'results/safe/a/o'));
    symlinkSync(victim, join(ws, 'results/safe/a/o'));
    const r = await run(ws, 'pipelines/p.yaml');
    assert.notEqual(r.code, 0);
    assert.equal(finalStates(r.events).a, 'failed');
    assert.match(r.stderr, /output path "results\/safe\/a\/o" goes through a symlink out of the workspace/);
    assert.equal(readFileSync(victim, 'utf8'), 'do not touch\n');
  }),
);

for (const name of ['..', '../escape', '../../escape', 'a/b', 'runs']) {
  test(`experiment name ${JSON.stringify(name)} is refused`, async () => {
    const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
    try {
      const r = await run(ws, 'pipelines/p.yaml', '-e', name);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /command line: error\[bad-name\]: experiment name .* is not a plain folder name/);
      assert.deepEqual(
        readdirSync(ws)
          .filter((f) => f !== '.facepipe')
          .sort(),
        ['pipelines'],
        'no results/, nothing beside the workspace',
      );
      assert.equal(existsSync(join(ws, '.facepipe/store')), false, 'nothing ran');
      assert.equal(existsSync(join(ws, '..', 'escape')), false);
    } finally {
      removeWorkspace(ws);
    }
  });
}

test(
  "a symlink inside a stage's folder output is refused (the stage fails, nothing is cached)",
  withDirs(async (ws, outside) => {
    writeFileSync(join(outside, 'secret'), 'secret\n');
    const ws2 = ws;
    writeFileSync(
      join(ws2, 'pipelines/p.yaml'),
      `name: link
stages:
  l:
    kind: command
    params: { cmd: ${JSON.stringify(`ln -s ${join(outside, 'secret')} {outputs.d}/link`)}, outputs: { d: dir } }
`,
    );
    const r = await run(ws2, 'pipelines/p.yaml');
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /stage l failed: .*link is a symlink; outputs and inputs may hold only regular files and folders/,
    );
    const recs = join(ws2, '.facepipe/store/stages');
    assert.equal(existsSync(recs) ? readdirSync(recs).length : 0, 0);
  }),
);

test(
  'an input folder holding a symlink fails that stage only; the run ends cleanly with a record',
  withDirs(async (ws, outside) => {
    writeFileSync(join(outside, 'target'), 't\n');
    mkdirSync(join(ws, 'data/d'), { recursive: true });
    writeFileSync(join(ws, 'data/d/real'), 'r\n');
    symlinkSync(join(outside, 'target'), join(ws, 'data/d/link'));
    writeFileSync(
      join(ws, 'pipelines/p.yaml'),
      `name: inl
stages:
  reads:
    kind: command
    inputs: { d: { path: data/d } }
    params: { cmd: "ls {inputs.d} > {outputs.o}", outputs: { o: file } }
  other:
    kind: command
    params: { cmd: "echo other > {outputs.o}", outputs: { o: file } }
`,
    );
    const r = await run(ws, 'pipelines/p.yaml');
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(finalStates(r.events), { reads: 'failed', other: 'done' });
    assert.match(r.stderr, /stage reads failed: .*data\/d\/link is a symlink/);
    const end = r.events.at(-1)!;
    assert.ok(end.type === 'run-end' && end.status === 'failed');
    assert.equal(existsSync(join(ws, '.facepipe/lock')), false);
  }),
);
