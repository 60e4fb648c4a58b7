// `facepipe kinds` documents every kind from its own schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeWorkspace, removeWorkspace, runCli } from './rig.js';

test("facepipe kinds lists every kind and shows a kind's params with defaults; a typo gets a suggestion", async () => {
  const ws = makeWorkspace();
  try {
    const list = await runCli(ws, ['kinds']);
    assert.equal(list.code, 0, list.stderr);
    for (const k of ['command', 'split', 'pretext', 'triarchy', 'prune', 'evaluate'])
      assert.match(list.stdout, new RegExp(`^${k}\\s`, 'm'));
    const one = await runCli(ws, ['kinds', 'triarchy']);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /^ {2}loss\.margin \(number\|null\) = null/m);
    assert.match(one.stdout, /^ {2}loss\.weights\.center \(number\) = 1/m);
    assert.match(one.stdout, /^ {2}pretext \(optional\):/m);
    const bad = await runCli(ws, ['kinds', 'triarhcy']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /did you mean 'triarchy'\?/);
  } finally {
    removeWorkspace(ws);
  }
});
