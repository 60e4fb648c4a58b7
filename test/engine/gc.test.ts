// gc frees what no kept run references, says how much, and keeps what the kept runs need.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { finalStates, listFiles, makeWorkspace, removeWorkspace, run, runCli, writeFiles } from './rig.js';

const PIPELINE = `name: g
stages:
  a:
    kind: command
    params:
      cmd: ${JSON.stringify('head -c 3000 /dev/zero | tr "\\0" "$FILL" > {outputs.o}')}
      env: { FILL: x }
      outputs: { o: file }
  b:
    kind: command
    params: { cmd: "echo constant > {outputs.o}", outputs: { o: file } }
  c:
    kind: command
    inputs: { a: a.o, b: b.o }
    params: { cmd: "cat {inputs.a} {inputs.b} > {outputs.d}/all", outputs: { d: dir } }
`;

test('gc frees unreferenced objects and says how much; cached results of the kept run survive', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
  const objects = () => listFiles(join(ws, '.facepipe/store/objects'));
  try {
    assert.equal((await run(ws, 'pipelines/p.yaml')).code, 0);
    const afterX = objects();
    const r2 = await run(ws, 'pipelines/p.yaml', '--set', 'a.env.FILL=y');
    assert.equal(r2.code, 0, r2.stderr);
    assert.deepEqual(finalStates(r2.events), { a: 'done', b: 'cached', c: 'done' });
    const afterY = objects();
    const onlyX = afterX.filter((o) => !afterY.includes(o));
    assert.deepEqual(onlyX, [], 'objects are never removed by a run');
    writeFiles(ws, { '.facepipe/tmp/leftover-of-a-killed-run/o': 'partial' });

    // Keeping every run record, everything is referenced (except temp leftovers).
    const keepAll = await runCli(ws, ['gc']);
    assert.equal(keepAll.code, 0, keepAll.stderr);
    assert.deepEqual(objects(), afterY);
    assert.equal(existsSync(join(ws, '.facepipe/tmp/leftover-of-a-killed-run')), false);

    const many = await runCli(ws, ['gc', '--keep-last', '3']);
    assert.match(
      many.stdout,
      /^freed 0 B \(0 entries; 0 old run records, kept 2 runs and 5 stage results\)/,
      'keeping more runs than exist keeps them all',
    );
    const bad = await runCli(ws, ['gc', '--keep-last', 'two']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--keep-last "two": expected a whole number/);
    assert.equal(readdirSync(join(ws, 'results/runs')).length, 2);

    const dry = await runCli(ws, ['gc', '--keep-last', '1', '--dry-run']);
    assert.match(
      dry.stdout,
      /^would free \d+(\.\d)? KiB \(\d+ entries; 1 old run records, kept 1 runs and 3 stage results\)/,
    );
    assert.deepEqual(objects(), afterY, 'a dry run removes nothing');

    const gc = await runCli(ws, ['gc', '--keep-last', '1']);
    assert.equal(gc.code, 0, gc.stderr);
    const m = /^freed (\d+(?:\.\d)?) KiB \((\d+) entries; 1 old run records, kept 1 runs and 3 stage results\)/.exec(
      gc.stdout,
    );
    assert.ok(m, gc.stdout);
    assert.ok(Number(m[1]) >= 5.8, 'at least the 3000-byte outputs of a and c with FILL=x');
    assert.equal(
      gc.stdout.split(' (')[0],
      dry.stdout.split(' (')[0].replace('would free', 'freed'),
      'the dry run predicted it',
    );
    const left = objects();
    const newInY = afterY.filter((o) => !afterX.includes(o));
    assert.equal(newInY.length, 3, "a's output, c's file and c's manifest");
    assert.ok(
      newInY.every((o) => left.includes(o)),
      'objects of the kept run survive',
    );
    assert.equal(left.length, newInY.length + 1, "only b's shared object survives of the first run");
    assert.equal(readdirSync(join(ws, 'results/runs')).length, 1);
    assert.equal(readdirSync(join(ws, '.facepipe/store/stages')).length, 3);

    const again = await run(ws, 'pipelines/p.yaml', '--set', 'a.env.FILL=y');
    assert.deepEqual(
      finalStates(again.events),
      { a: 'cached', b: 'cached', c: 'cached' },
      'the kept run is still cached',
    );
    const back = await run(ws, 'pipelines/p.yaml');
    assert.deepEqual(
      finalStates(back.events),
      { a: 'done', b: 'cached', c: 'done' },
      'the collected result is recomputed',
    );
  } finally {
    removeWorkspace(ws);
  }
});

test('gc removes a stray object nobody references, and reports its size', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
  try {
    assert.equal((await run(ws, 'pipelines/p.yaml')).code, 0);
    const before = listFiles(join(ws, '.facepipe/store/objects'));
    writeFiles(ws, { [`.facepipe/store/objects/ff/${'e'.repeat(62)}`]: 'z'.repeat(5000) });
    const gc = await runCli(ws, ['gc']);
    assert.equal(gc.code, 0, gc.stderr);
    assert.match(gc.stdout, /^freed 4\.9 KiB \(1 entries;/);
    assert.deepEqual(listFiles(join(ws, '.facepipe/store/objects')), before);
    const r = await run(ws, 'pipelines/p.yaml');
    assert.deepEqual(finalStates(r.events), { a: 'cached', b: 'cached', c: 'cached' });
  } finally {
    removeWorkspace(ws);
  }
});
