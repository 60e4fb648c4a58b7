import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kind } from '../../src/stages/prune/kind.js';
import { run } from '../../src/stages/prune/run.js';
import { fakeContext } from './fake-context.js';
import { tinyPretext, tinyTriarchy } from './face-fixture.js';

test('prune: drops the identity head, its BN and the centres, and reports the parameter count', async () => {
  const trained = await tinyTriarchy();
  const ctx = fakeContext(kind, {}, { model: trained });
  try {
    await run(ctx);
    const full = JSON.parse(readFileSync(join(trained, 'model.json'), 'utf8'));
    const pruned = JSON.parse(readFileSync(join(ctx.outputs.model, 'model.json'), 'utf8'));
    assert.equal(pruned.modelTopology.facepipe.kind, 'inference');
    const names: string[] = pruned.weightsManifest[0].weights.map((w: { name: string }) => w.name);
    assert.ok(
      names.every((n) => n.startsWith('backbone/') || n.startsWith('embedding/')),
      'only backbone + embedding remain',
    );
    assert.ok(names.some((n) => n.startsWith('embedding/')));
    // Removed: identity Dense (16*4 + 4), its BN gamma/beta (4 + 4) and the centres (4*16).
    const removed = 16 * 4 + 4 + 8 + 4 * 16;
    assert.equal(ctx.recorded.removed_params, removed);
    assert.equal(ctx.recorded.params, full.modelTopology.facepipe.numParams - removed);
    assert.equal(ctx.recorded.params, pruned.modelTopology.facepipe.numParams);
  } finally {
    ctx.cleanup();
  }
});

test('prune: fails clearly over max_params, and on a model that is not a triarchy model', async () => {
  const over = fakeContext(kind, { max_params: 1000 }, { model: await tinyTriarchy() });
  const wrong = fakeContext(kind, {}, { model: await tinyPretext() });
  try {
    await assert.rejects(run(over), /parameters, over prune.max_params = 1,000; use a smaller backbone/);
    await assert.rejects(run(wrong), /holds a 'backbone' model|expects a triarchy model/);
  } finally {
    over.cleanup();
    wrong.cleanup();
  }
});
