// The split stage on each dataset layout built from the bundled faces: the 2020 challenge's (pair images in no
// manifest), a flat folder of GIFs, an LFW pairs.txt, files without extensions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CMU_FACES_PATTERN } from '../../src/ml/data/dataset.js';
import { kind } from '../../src/stages/split/kind.js';
import { run } from '../../src/stages/split/run.js';
import { parseLfwPairs } from '../../src/stages/split/pairs-file.js';
import { readSplits } from '../../src/stages/shared/splits-format.js';
import { buildLayout, cmuImages, convert } from '../e2e/layouts.js';
import { fakeContext } from './fake-context.js';

const workspace = () => mkdtempSync(join(tmpdir(), 'split-layouts-'));
const ctxInputs = (root: string) => ({
  dataset: root,
  validation_pairs: join(root, 'validate', 'validate_label.csv'),
  test_pairs: join(root, 'test', 'test_label.csv'),
});

test('split: the 2020 challenge layout: train from train_meta.csv, pairs of images in no manifest, no identity counts', async () => {
  const ws = workspace();
  try {
    const { dataset } = await buildLayout(ws, 'challenge');
    const root = join(ws, dataset);
    // The default identity counts (validation 3, test 6) are left as they are: given pairs need none.
    const ctx = fakeContext(kind, { dataset: { manifest: 'train/train_meta.csv' } }, {}, { root: join(ws, 'out') });
    await run({ ...ctx, inputs: ctxInputs(root) });
    const s = await readSplits(ctx.outputs.splits);
    const meta = readFileSync(join(root, 'train', 'train_meta.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1);
    // Training is exactly the manifest (its paths relative to its own folder, train/), all 14 identities.
    assert.deepEqual(s.train.map((t) => t.file).sort(), meta.map((l) => `train/${l.split(',')[0]}`).sort());
    assert.equal(s.summary.identities.train.length, 14);
    assert.deepEqual(s.summary.identities.validation, []);
    assert.deepEqual(s.summary.identities.test, []);
    // Pair images resolve relative to their CSV's folder, with labels as given (1 = different).
    for (const [set, folder, csv] of [
      ['validation', 'validate', 'validate_label.csv'],
      ['test', 'test', 'test_label.csv'],
    ] as const) {
      const rows = readFileSync(join(root, folder, csv), 'utf8')
        .trim()
        .split('\n')
        .slice(1);
      assert.deepEqual(
        s[set].map((x) => `${x.image1},${x.image2},${x.different ? 1 : 0}`),
        rows.map((r) => {
          const [a, b, l] = r.split(',');
          return `${folder}/${a},${folder}/${b},${l}`;
        }),
      );
      assert.equal(s.summary.pairs[set].source, 'csv');
      assert.equal(s.summary.pairs[set].images_in_no_listing, s.summary.images[set]);
      assert.ok(s.summary.images[set] > 10);
    }
    assert.ok(!s.train.some((t) => /^(validate|test)\//.test(t.file)), 'pair images never train');

    // Pair images are header-checked like listed ones; a given pair is never dropped, so a bad one fails the split.
    writeFileSync(join(root, 'validate', '00000.jpg'), 'not a JPEG');
    const again = fakeContext(kind, { dataset: { manifest: 'train/train_meta.csv' } }, {}, { root: join(ws, 'out2') });
    await assert.rejects(
      run({ ...again, inputs: ctxInputs(root) }),
      /validate_label\.csv: 1 of its images cannot be read: validate\/00000\.jpg \(/,
    );
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test('split: a flat folder of GIFs whose file names hold the identity, no manifest', async () => {
  const ws = workspace();
  try {
    const { dataset } = await buildLayout(ws, 'flat');
    const ctx = fakeContext(
      kind,
      { dataset: { attribute_pattern: CMU_FACES_PATTERN }, pairs: { per_set: 10 } },
      { dataset: join(ws, dataset) },
      { root: join(ws, 'out') },
    );
    await run(ctx);
    const s = await readSplits(ctx.outputs.splits);
    const ids = s.summary.identities;
    assert.equal(ids.train.length + ids.validation.length + ids.test.length, 20);
    assert.deepEqual(s.summary.attributes, ['expression', 'eyes', 'pose']);
    assert.ok(s.train.every((t) => t.file.endsWith('.gif') && !t.file.includes('/')));
    assert.ok(s.train.every((t) => t.file.startsWith(`${t.identity}_`)));
    assert.equal(s.summary.pairs.test.cross_attribute, 20, 'cross-pose pairs from the names');

    // Without an identity group the same folder is an error that says what to do.
    const bare = fakeContext(kind, {}, { dataset: join(ws, dataset) }, { root: join(ws, 'out2') });
    await assert.rejects(
      run(bare),
      /holds 624 images but no identity sub-folders: .*attribute_pattern \(a named group identity/,
    );
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test('split: an LFW pairs.txt as test pairs: its folds, its identities to test, <name>/<name>_NNNN.<ext>', async () => {
  const ws = workspace();
  try {
    const { dataset } = await buildLayout(ws, 'lfw');
    const root = join(ws, dataset);
    const ctx = fakeContext(
      kind,
      { identities: { validation: 3 }, pairs: { per_set: 10 } },
      {},
      { root: join(ws, 'out') },
    );
    await run({ ...ctx, inputs: { dataset: root, test_pairs: join(root, 'pairs.txt') } });
    const s = await readSplits(ctx.outputs.splits);
    assert.equal(s.test.length, 60);
    assert.equal(s.summary.pairs.test.source, 'lfw');
    assert.equal(s.summary.pairs.test.folds, 10);
    for (let f = 1; f <= 10; f++) {
      const fold = s.test.filter((x) => x.fold === f);
      assert.equal(fold.length, 6, `fold ${f}`);
      assert.equal(fold.filter((x) => x.different).length, 3, `fold ${f}: 3 different-person pairs`);
    }
    assert.match(readFileSync(join(ctx.outputs.splits, 'test.csv'), 'utf8'), /^image1,image2,label,fold\n/);
    const lines = readFileSync(join(root, 'pairs.txt'), 'utf8').trim().split('\n');
    const [name, n1, n2] = lines[1].split('\t');
    assert.deepEqual(
      [s.test[0].image1, s.test[0].image2],
      [`${name}/${name}_${n1.padStart(4, '0')}.jpg`, `${name}/${name}_${n2.padStart(4, '0')}.jpg`],
    );
    const testIds = new Set(s.test.flatMap((x) => [x.image1.split('/')[0], x.image2.split('/')[0]]));
    assert.deepEqual(s.summary.identities.test, [...testIds].sort());
    assert.equal(s.summary.identities.validation.length, 3);
    assert.ok(!s.train.some((t) => testIds.has(t.identity)), 'identity-disjoint from the pairs');
    assert.equal(s.summary.pairs.validation.source, 'generated');
    assert.equal(
      readFileSync(join(ctx.outputs.splits, 'validation.csv'), 'utf8').split('\n')[0],
      'image1,image2,label',
    );
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test('split: LFW pairs.txt errors name the file and line', async () => {
  assert.deepEqual(parseLfwPairs('1 1\nA 1 2\nA 1 B 3\n', 'p.txt'), [
    {
      image1: 'A/A_0001',
      image2: 'A/A_0002',
      different: false,
      fold: 1,
      where: 'p.txt line 2',
      stems: ['A/A_0001', 'A/A_0002'],
    },
    {
      image1: 'A/A_0001',
      image2: 'B/B_0003',
      different: true,
      fold: 1,
      where: 'p.txt line 3',
      stems: ['A/A_0001', 'B/B_0003'],
    },
  ]);
  assert.throws(
    () => parseLfwPairs('2 1\nA 1 2\nA 1 B 3\n', 'p.txt'),
    /p\.txt: the first line says 2 folds of 1 .* but 2 pair lines follow/,
  );
  assert.throws(
    () => parseLfwPairs('1 1\nA 1 B 2\nA 1 B 3\n', 'p.txt'),
    /p\.txt line 2: a same-person line reads "name n1 n2"/,
  );
  assert.throws(
    () => parseLfwPairs('1 1\nA 1 2\nA 1 x B\n', 'p.txt'),
    /p\.txt line 3: image number must be a whole number/,
  );
  const ws = workspace();
  try {
    const { dataset } = await buildLayout(ws, 'lfw');
    const root = join(ws, dataset);
    writeFileSync(join(root, 'bad.txt'), '1\nan2i 1 99\nan2i 1 at33 2\n');
    const ctx = fakeContext(kind, {}, {}, { root: join(ws, 'out') });
    await assert.rejects(
      run({ ...ctx, inputs: { dataset: root, test_pairs: join(root, 'bad.txt') } }),
      /bad\.txt line 2: image an2i\/an2i_0099\.<ext>: file not found in the dataset folder/,
    );
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});

test('split: extensions any lists files by their content (no extensions), and only images', async () => {
  const ws = workspace();
  try {
    const root = join(ws, 'faces');
    const formats = ['png', 'jpeg', 'gif', 'pgm'] as const;
    const images = cmuImages().filter((im) =>
      ['an2i', 'at33', 'boland', 'bpm', 'ch4f', 'cheyer'].includes(im.identity),
    );
    for (const [i, im] of images.entries()) await convert(im, join(root, im.identity, `img${i}`), formats[i % 4]);
    writeFileSync(join(root, 'an2i', 'notes'), 'not an image\n');
    const params = { dataset: { extensions: 'any' }, identities: { validation: 2, test: 2 }, pairs: { per_set: 5 } };
    const ctx = fakeContext(kind, params, { dataset: root }, { root: join(ws, 'out') });
    await run(ctx);
    const s = await readSplits(ctx.outputs.splits);
    const listed = s.train.length + s.summary.images.validation + s.summary.images.test;
    assert.ok(s.train.every((t) => /\/img\d+$/.test(t.file)));
    assert.equal(s.summary.identities.train.length, 2);
    assert.equal(s.train.length, 2 * 32, 'every image of the training identities, not the notes file');
    assert.ok(listed <= images.length);
    // By extension (the default), these files are not images at all.
    const byExt = fakeContext(kind, {}, { dataset: root }, { root: join(ws, 'out2') });
    await assert.rejects(run(byExt), /no images found in .*faces \(extensions \.png, .*\.gif/);
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
});
