// In-process tests of the engine's pure parts: rerun reasons, cache keys, the stat cache, the lock, cycles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { didYouMean, FacepipeError } from '../../src/core/errors.js';
import { canonicalJson, sha256 } from '../../src/core/hash.js';
import { Digests } from '../../src/execute/store/digests.js';
import { sealJson, unsealJson } from '../../src/core/sealed.js';
import { acquireLock } from '../../src/execute/lock.js';
import { diffParams, keyMaterial, rerunReasons, stageKey, type KeyMaterial } from '../../src/plan/keys.js';
import { formatParamChange, formatReasons } from '../../src/plan/reasons.js';
import type { StageSpec } from '../../src/load/load.js';
import { findCycles } from '../../src/load/cycles.js';
import { makeWorkspace, removeWorkspace, writeFiles } from './rig.js';

const explainRerun = (...a: Parameters<typeof rerunReasons>) => formatReasons(rerunReasons(...a));

function stage(version = '1', params: Record<string, unknown> = { lr: 0.1, loss: { margin: 0.3 } }): StageSpec {
  return {
    name: 'train',
    params,
    inputs: {},
    outputs: [],
    inputWhere: {},
    where: { file: 'p.yaml', line: 1, column: 1 },
    kind: {
      name: 'triarchy',
      version,
      description: '',
      paramsSchema: {},
      inputs: () => [],
      outputs: () => [],
      runModule: './run.js',
    },
  };
}

test('explainRerun: never run, kind version, params (stage.key old -> new), inputs by label', () => {
  const s1 = stage('1');
  const last = keyMaterial(s1, { splits: 'aaa', data: 'ddd' });
  const labels = { splits: 'split', data: 'data/faces' };
  assert.equal(explainRerun(s1, last, undefined, labels), 'never run');
  assert.equal(
    explainRerun(stage('2'), keyMaterial(stage('2'), last.inputs), last, labels),
    'kind version changed: 1 -> 2',
  );
  const s3 = stage('1', { lr: 0.2, loss: { margin: 0.3 } });
  assert.equal(explainRerun(s3, keyMaterial(s3, last.inputs), last, labels), 'params changed: train.lr 0.1 -> 0.2');
  assert.equal(explainRerun(s1, keyMaterial(s1, { splits: 'bbb', data: 'ddd' }), last, labels), 'input changed: split');
  const all = stage('3', { lr: 0.1, loss: { margin: 0.5 }, extra: 'x' });
  assert.equal(
    explainRerun(all, keyMaterial(all, { splits: 'aaa', data: 'eee' }), last, labels),
    'kind version changed: 1 -> 3; params changed: train.extra (unset) -> "x", train.loss.margin 0.3 -> 0.5; input changed: data/faces',
  );
  assert.equal(explainRerun(s1, last, last, labels), 'not in the cache (last run did not finish)');
  const other: KeyMaterial = { ...last, kind: 'command' };
  assert.equal(explainRerun(s1, last, other, labels), 'kind changed: command -> triarchy');
});

test('explainRerun lists at most four param changes, then counts the rest', () => {
  const before = stage('1', { a: 1, b: 1, c: 1, d: 1, e: 1, f: 1 });
  const after = stage('1', { a: 2, b: 2, c: 2, d: 2, e: 2, f: 2 });
  const why = explainRerun(after, keyMaterial(after, {}), keyMaterial(before, {}), {});
  assert.equal(why, 'params changed: train.a 1 -> 2, train.b 1 -> 2, train.c 1 -> 2, train.d 1 -> 2, and 2 more');
});

test('diffParams names removed keys and whole-list changes', () => {
  assert.deepEqual(diffParams('s', { a: [1, 2], b: { c: true } }, { a: [1, 3] }).map(formatParamChange), [
    's.a [1,2] -> [1,3]',
    's.b.c true -> (unset)',
  ]);
  assert.deepEqual(diffParams('s', { a: { b: 1 } }, { a: { b: 1 } }).map(formatParamChange), []);
});

test('stageKey: independent of key order, changes with kind version, params and inputs', () => {
  const a = stageKey(keyMaterial(stage('1', { x: 1, y: { p: 1, q: 2 } }), { i: 'd1', j: 'd2' }));
  const b = stageKey(keyMaterial(stage('1', { y: { q: 2, p: 1 }, x: 1 }), { j: 'd2', i: 'd1' }));
  assert.equal(a, b);
  assert.match(a, /^[0-9a-f]{64}$/);
  assert.notEqual(stageKey(keyMaterial(stage('2', { x: 1, y: { p: 1, q: 2 } }), { i: 'd1', j: 'd2' })), a);
  assert.notEqual(stageKey(keyMaterial(stage('1', { x: 1.5, y: { p: 1, q: 2 } }), { i: 'd1', j: 'd2' })), a);
  assert.notEqual(stageKey(keyMaterial(stage('1', { x: 1, y: { p: 1, q: 2 } }), { i: 'd1', j: 'd3' })), a);
  assert.equal(canonicalJson({ b: 1, a: [undefined, { d: undefined, c: 2 }] }), '{"a":[null,{"c":2}],"b":1}');
  assert.throws(() => canonicalJson({ x: NaN }), /non-finite/);
});

test('Digests: an unchanged file is not re-read (stat cache), an in-place edit is seen even with mtime restored', async () => {
  const ws = makeWorkspace({ 'data/f.txt': 'hello world\n' });
  try {
    const file = join(ws, 'data/f.txt');
    const cacheFile = join(ws, 'stat-cache.json');
    const d1 = new Digests(cacheFile);
    assert.equal((await d1.fileDigest(file)).digest, sha256('hello world\n'));
    d1.save();
    // Spy by planting a marker digest in the persisted stat cache (sealed again, as only facepipe could): a new
    // instance returns it only if it trusts the cache instead of hashing the file again.
    const MARKER = 'f'.repeat(64);
    const u = unsealJson(readFileSync(cacheFile, 'utf8'));
    assert.ok(u.ok, 'the stat cache is sealed');
    const saved = u.value as Record<string, { sig: string; digest: string }>;
    saved[file].digest = MARKER;
    writeFileSync(cacheFile, sealJson(saved));
    const d2 = new Digests(cacheFile);
    assert.equal((await d2.fileDigest(file)).digest, MARKER, 'unchanged file: digest comes from the stat cache');
    assert.equal((await d2.fileDigest(file)).digest, MARKER);

    const T = new Date('2020-01-02T03:04:05Z');
    utimesSync(file, T, T);
    assert.equal(
      (await d2.fileDigest(file)).digest,
      sha256('hello world\n'),
      'a touched file is re-hashed (same content)',
    );
    d2.save();
    const mtimeNs = statSync(file, { bigint: true }).mtimeNs;
    writeFileSync(file, 'HELLO world\n'); // same size
    utimesSync(file, T, T); // and mtime put back: only ctime tells
    assert.equal(statSync(file, { bigint: true }).mtimeNs, mtimeNs);
    assert.equal((await d2.fileDigest(file)).digest, sha256('HELLO world\n'), 'edited file is re-hashed');

    // A folder digest covers names and contents of every file below it.
    writeFiles(ws, { 'dir/a.txt': 'a', 'dir/sub/b.txt': 'b' });
    const dd = await d2.pathDigest(join(ws, 'dir'));
    assert.equal(dd.type, 'dir');
    assert.deepEqual(
      dd.manifest!.entries.map((e) => e.path),
      ['a.txt', 'sub/b.txt'],
    );
    writeFiles(ws, { 'dir/sub/b.txt': 'B' });
    assert.notEqual((await d2.pathDigest(join(ws, 'dir'))).digest, dd.digest);
  } finally {
    removeWorkspace(ws);
  }
});

test('acquireLock: a live holder blocks (--no-wait fails naming it; waiting reports it once), a dead one is taken over', async () => {
  const ws = makeWorkspace();
  try {
    const path = join(ws, '.facepipe/lock');
    const release = await acquireLock(path, { command: 'first', wait: false });
    const holder = JSON.parse(readFileSync(path, 'utf8')) as { pid: number; host: string };
    assert.equal(holder.pid, process.pid);
    await assert.rejects(
      acquireLock(path, { command: 'second', wait: false }),
      (e: unknown) =>
        e instanceof FacepipeError &&
        e.diagnostics[0].code === 'locked' &&
        e.message.includes(`pid ${process.pid} on ${hostname()} (first, since`),
    );
    const waits: string[] = [];
    const second = acquireLock(path, { command: 'second', wait: true, pollMs: 10, onWait: (h) => waits.push(h) });
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(waits.length, 1);
    assert.match(waits[0], /\(first, since/);
    release();
    const release2 = await second;
    assert.equal((JSON.parse(readFileSync(path, 'utf8')) as { command: string }).command, 'second');
    release2();

    writeFiles(ws, {
      '.facepipe/lock': JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), command: 'ghost', startedAt: 'then' }),
    });
    const release3 = await acquireLock(path, { command: 'third', wait: false });
    assert.equal((JSON.parse(readFileSync(path, 'utf8')) as { command: string }).command, 'third');
    release3();

    // A holder on another host cannot be checked: it is respected, not taken over.
    writeFiles(ws, {
      '.facepipe/lock': JSON.stringify({ pid: 1, host: 'elsewhere', command: 'remote', startedAt: 'then' }),
    });
    await assert.rejects(acquireLock(path, { command: 'fourth', wait: false }), /in use by pid 1 on elsewhere/);
  } finally {
    removeWorkspace(ws);
  }
});

test('findCycles reports each cycle once, in reading direction', () => {
  const up = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
    ['e', ['e']],
  ]);
  assert.deepEqual(findCycles(['a', 'b', 'c', 'd', 'e'], up), [
    ['a', 'b', 'c', 'a'],
    ['e', 'e'],
  ]);
  assert.deepEqual(
    findCycles(
      ['x', 'y'],
      new Map([
        ['x', ['y']],
        ['y', []],
      ]),
    ),
    [],
  );
});

test('didYouMean: close typos (including swapped letters) get a suggestion, far ones do not', () => {
  assert.equal(didYouMean('trian', ['train', 'split', 'evaluate']), 'train');
  assert.equal(didYouMean('inptus', ['inputs', 'params', 'kind']), 'inputs');
  assert.equal(didYouMean('evalute', ['train', 'split', 'evaluate']), 'evaluate');
  assert.equal(didYouMean('zzz', ['train', 'split']), undefined);
});
