// A tiny face-verification pipeline for the stage tests: 8 CMU identities x 8 images (via a manifest),
// a 32 px backbone of width/depth 0.1. Each step is memoised per process.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CMU_FACES_PATTERN } from '../../src/ml/data/dataset.js';
import { kind as splitKind } from '../../src/stages/split/kind.js';
import { run as splitRun } from '../../src/stages/split/run.js';
import { kind as pretextKind } from '../../src/stages/pretext/kind.js';
import { run as pretextRun } from '../../src/stages/pretext/run.js';
import { kind as triarchyKind } from '../../src/stages/triarchy/kind.js';
import { run as triarchyRun } from '../../src/stages/triarchy/run.js';
import { kind as pruneKind } from '../../src/stages/prune/kind.js';
import { run as pruneRun } from '../../src/stages/prune/run.js';
import { CMU_FACES, fakeContext } from './fake-context.js';

export const TINY_BACKBONE = { width: 0.1, depth: 0.1, input_size: 32, bn_momentum: 0, drop_connect: 0 };

export const tinyTriarchyParams = {
  backbone: TINY_BACKBONE,
  embedding_dim: 16,
  epochs: 2,
  sampler: { identities: 2, images: 4 },
  validate_every: 1,
};

/**
 * A dataset folder under `dir`: the first 8 CMU identities, 8 images each spread over poses (copied, same relative
 * paths as in data/cmu-faces), and manifest.csv listing them. The manifest sits inside the folder, as it must.
 */
export function tinyDataset(dir: string): string {
  const root = CMU_FACES();
  const out = join(dir, 'faces');
  const ids = readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .slice(0, 8);
  const lines = ['file,identity'];
  for (const id of ids) {
    const files = readdirSync(join(root, id))
      .filter((f) => f.endsWith('.pgm'))
      .sort();
    mkdirSync(join(out, id), { recursive: true });
    for (let i = 0; i < 8; i++) {
      const f = files[Math.floor((i * files.length) / 8)];
      copyFileSync(join(root, id, f), join(out, id, f));
      lines.push(`${id}/${f},${id}`);
    }
  }
  writeFileSync(join(out, 'manifest.csv'), lines.join('\n') + '\n');
  return out;
}

const memo = new Map<string, Promise<string>>();
const once = (key: string, f: () => Promise<string>) => {
  let p = memo.get(key);
  if (!p) memo.set(key, (p = f()));
  return p;
};
const scratch = () => mkdtempSync(join(tmpdir(), 'face-fixture-'));

/** splits folder: 4 train, 2 validation, 2 test identities, 12 pairs per set. */
export const tinySplits = (withAttributes = true) =>
  once(`split${withAttributes}`, async () => {
    const root = scratch();
    // Later stages read the same relative paths from data/cmu-faces.
    const ctx = fakeContext(
      splitKind,
      {
        dataset: { manifest: 'manifest.csv', attribute_pattern: withAttributes ? CMU_FACES_PATTERN : null },
        identities: { validation: 2, test: 2 },
        pairs: { per_set: 6 },
      },
      { dataset: tinyDataset(root) },
      { root },
    );
    await splitRun(ctx);
    return ctx.outputs.splits;
  });

export const tinyPretext = () =>
  once('pretext', async () => {
    const ctx = fakeContext(
      pretextKind,
      { backbone: TINY_BACKBONE, epochs: 1, batch_size: 8, augment: { resize: 36 } },
      { dataset: CMU_FACES(), splits: await tinySplits() },
      { root: scratch() },
    );
    await pretextRun(ctx);
    return ctx.outputs.backbone;
  });

export const tinyTriarchy = () =>
  once('triarchy', async () => {
    const ctx = fakeContext(
      triarchyKind,
      tinyTriarchyParams,
      { dataset: CMU_FACES(), splits: await tinySplits(), pretext: await tinyPretext() },
      { root: scratch() },
    );
    await triarchyRun(ctx);
    return ctx.outputs.model;
  });

export const tinyPruned = () =>
  once('prune', async () => {
    const ctx = fakeContext(pruneKind, {}, { model: await tinyTriarchy() }, { root: scratch() });
    await pruneRun(ctx);
    return ctx.outputs.model;
  });
