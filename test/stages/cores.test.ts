// The cores a stage may use (ctx.cores) only schedule its work: pretext, triarchy and evaluate write the same
// bytes with 1 and with 2 cores; the shard count, a param, is what changes the result.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StageKind, StageRun } from '../../src/contracts/stage-kind.js';
import { kind as evaluateKind } from '../../src/stages/evaluate/kind.js';
import { run as evaluateRun } from '../../src/stages/evaluate/run.js';
import { kind as pretextKind } from '../../src/stages/pretext/kind.js';
import { run as pretextRun } from '../../src/stages/pretext/run.js';
import { kind as triarchyKind } from '../../src/stages/triarchy/kind.js';
import { run as triarchyRun } from '../../src/stages/triarchy/run.js';
import { CMU_FACES, fakeContext } from './fake-context.js';
import { TINY_BACKBONE, tinyPruned, tinySplits, tinyTriarchyParams } from './face-fixture.js';

/** Runs the stage with 1 and with 2 cores; returns each run's output files (by name) and logs. */
async function byCores<P>(
  kind: StageKind<P>,
  run: StageRun<P>,
  params: Record<string, unknown>,
  inputs: Record<string, string>,
  output: string,
  files: string[],
): Promise<Array<{ files: Buffer[]; logs: string[] }>> {
  const out: Array<{ files: Buffer[]; logs: string[] }> = [];
  for (const cores of [1, 2]) {
    const ctx = fakeContext(kind, params, inputs, { cores });
    try {
      await run(ctx);
      out.push({ files: files.map((f) => readFileSync(join(ctx.outputs[output], f))), logs: ctx.logs });
    } finally {
      ctx.cleanup();
    }
  }
  return out;
}

const sameFiles = (a: Buffer[], b: Buffer[], names: string[]) =>
  names.forEach((f, i) => assert.ok(a[i].equals(b[i]), `${f} differs between 1 and 2 cores`));

test('triarchy: 1 and 2 cores train the same model (2 shards per batch), other shards differ', async () => {
  const inputs = { dataset: CMU_FACES(), splits: await tinySplits() };
  const params = {
    ...tinyTriarchyParams,
    init: 'scratch',
    backbone: { ...TINY_BACKBONE, drop_connect: 0.2 },
    flip_average: true,
  };
  const names = ['weights.bin', 'training.json'];
  const [one, two] = await byCores(triarchyKind, triarchyRun, params, inputs, 'model', names);
  assert.ok(
    one.logs.some((l) => /2 shards per batch on 1 worker thread$/.test(l)),
    one.logs.join('\n'),
  );
  assert.ok(
    two.logs.some((l) => /2 shards per batch on 2 worker threads$/.test(l)),
    two.logs.join('\n'),
  );
  sameFiles(one.files, two.files, names);
  const [four] = await byCores(triarchyKind, triarchyRun, { ...params, shards: 4 }, inputs, 'model', names);
  assert.ok(!four.files[0].equals(one.files[0]), 'shards: 4 should train a different model than shards: 2');
});

test('pretext: 1 and 2 cores train the same backbone (losses and held-out figures too)', async () => {
  const inputs = { dataset: CMU_FACES(), splits: await tinySplits() };
  const params = { backbone: TINY_BACKBONE, epochs: 2, batch_size: 8, augment: { resize: 36 } };
  const names = ['weights.bin', 'training.json'];
  const [one, two] = await byCores(pretextKind, pretextRun, params, inputs, 'backbone', names);
  const record = JSON.parse(one.files[1].toString()) as { validations: Array<{ epoch: number }> };
  assert.deepEqual(
    record.validations.map((v) => v.epoch),
    [1, 2],
    'held-out figures were measured',
  );
  sameFiles(one.files, two.files, names);
});

test('evaluate (TF.js): 1 core (in-process) and 2 cores (worker threads) report the same figures', async () => {
  const inputs = { model: await tinyPruned(), dataset: CMU_FACES(), splits: await tinySplits() };
  const names = ['metrics.json', 'predictions.csv', 'roc.json'];
  const params = { flip_average: true, runtime: 'tfjs' };
  const [one, two] = await byCores(evaluateKind, evaluateRun, params, inputs, 'report', names);
  assert.ok(
    two.logs.some((l) => /TF\.js embeds on 2 worker threads/.test(l)),
    two.logs.join('\n'),
  );
  assert.ok(!one.logs.some((l) => /worker threads/.test(l)));
  sameFiles(one.files, two.files, names);
});
