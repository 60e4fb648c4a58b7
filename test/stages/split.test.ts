import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kind } from '../../src/stages/split/kind.js';
import { run } from '../../src/stages/split/run.js';
import { readSplits } from '../../src/stages/shared/splits-format.js';
import { CMU_FACES_PATTERN } from '../../src/ml/data/dataset.js';
import { validator } from '../../src/load/ajv.js';
import { CMU_FACES, fakeContext } from './fake-context.js';

const dataset = { attribute_pattern: CMU_FACES_PATTERN };
const identityOf = (file: string) => file.split('/')[0];
const poseOf = (file: string) => file.split('/')[1].split('_')[1];

test('split: identity-disjoint sets, balanced cross-pose pairs, deterministic', async () => {
  const a = fakeContext(kind, { seed: 0, dataset }, { dataset: CMU_FACES() });
  const b = fakeContext(kind, { seed: 0, dataset }, { dataset: CMU_FACES() });
  const c = fakeContext(kind, { seed: 1, dataset }, { dataset: CMU_FACES() });
  try {
    await run(a);
    await run(b);
    await run(c);
    const s = await readSplits(a.outputs.splits);
    const { train, validation, test: testIds } = s.summary.identities;
    assert.equal(train.length, 11);
    assert.equal(validation.length, 3);
    assert.equal(testIds.length, 6);
    const all = new Set([...train, ...validation, ...testIds]);
    assert.equal(all.size, 20, 'sets must not share identities');
    assert.deepEqual(s.summary.attributes, ['expression', 'eyes', 'pose']);
    assert.ok(s.train.every((t) => train.includes(t.identity) && t.attributes.pose !== undefined));
    assert.equal(a.recorded.train_images, s.train.length);
    // Every image of the validation identities, with its attributes (pretext's held-out images), none of training's.
    const held = s.validationImages!;
    const onDisk = validation.flatMap((id) => readdirSync(join(CMU_FACES(), id)).filter((f) => f.endsWith('.pgm')));
    assert.equal(held.length, onDisk.length);
    assert.ok(held.every((h) => validation.includes(h.identity) && h.attributes.pose === poseOf(h.file)));

    for (const [name, pairs, ids] of [
      ['validation', s.validation, validation],
      ['test', s.test, testIds],
    ] as const) {
      const same = pairs.filter((p) => !p.different);
      const diff = pairs.filter((p) => p.different);
      assert.ok(same.length > 100, `${name}: every cross-pose same pair`);
      assert.equal(same.length, diff.length, `${name}: balanced`);
      for (const p of pairs) {
        assert.ok(
          ids.includes(identityOf(p.image1)) && ids.includes(identityOf(p.image2)),
          `${name}: pair outside its identities`,
        );
        assert.equal(
          identityOf(p.image1) !== identityOf(p.image2),
          p.different,
          `${name}: label must say 1 = different`,
        );
        assert.notEqual(poseOf(p.image1), poseOf(p.image2), `${name}: pairs are cross-pose when pose exists`);
      }
      assert.equal(new Set(pairs.map((p) => `${p.image1}|${p.image2}`)).size, pairs.length, 'no duplicate pairs');
    }
    // Same seed: byte-identical files; another seed: another split.
    for (const f of ['train.csv', 'validation.csv', 'test.csv', 'validation_images.csv', 'summary.json']) {
      assert.equal(readFileSync(join(a.outputs.splits, f), 'utf8'), readFileSync(join(b.outputs.splits, f), 'utf8'));
    }
    assert.notEqual(
      readFileSync(join(a.outputs.splits, 'test.csv'), 'utf8'),
      readFileSync(join(c.outputs.splits, 'test.csv'), 'utf8'),
    );
    assert.match(readFileSync(join(a.outputs.splits, 'test.csv'), 'utf8'), /^image1,image2,label\n/);
  } finally {
    a.cleanup();
    b.cleanup();
    c.cleanup();
  }
});

test('split: per_set caps the pairs; without attributes pairs are plain', async () => {
  const ctx = fakeContext(
    kind,
    { identities: { validation: 0.2, test: 2 }, pairs: { per_set: 25 } },
    { dataset: CMU_FACES() },
  );
  try {
    await run(ctx);
    const s = await readSplits(ctx.outputs.splits);
    assert.equal(s.summary.identities.validation.length, 4); // 0.2 of 20
    assert.equal(s.summary.identities.test.length, 2);
    assert.deepEqual(s.summary.attributes, []);
    assert.equal(s.validation.length, 50);
    assert.equal(s.test.filter((p) => p.different).length, 25);
    assert.equal(s.summary.pairs.test.cross_attribute, 0);
  } finally {
    ctx.cleanup();
  }
});

test('split: user pairs CSV fixes the test identities, with the stated label convention', async () => {
  const ctx = fakeContext(kind, { dataset, pairs: { csv_different_label: 0 } }, { dataset: CMU_FACES() });
  try {
    const csv = join(ctx.workDir, 'pairs.csv');
    // Label 0 = different here (the opposite of the original's convention).
    writeFileSync(
      csv,
      [
        'image1,image2,label',
        'an2i/an2i_left_angry_open_2.pgm,an2i/an2i_right_angry_open_2.pgm,1',
        'an2i/an2i_left_angry_open_2.pgm,at33/at33_left_angry_open_2.pgm,0',
      ].join('\n'),
    );
    await run({ ...ctx, inputs: { dataset: CMU_FACES(), test_pairs: csv } });
    const s = await readSplits(ctx.outputs.splits);
    assert.deepEqual(s.summary.identities.test, ['an2i', 'at33']);
    assert.equal(s.summary.pairs.test.source, 'csv');
    assert.deepEqual(
      s.test.map((p) => p.different),
      [false, true],
    );
    assert.ok(!s.summary.identities.train.includes('an2i') && !s.summary.identities.validation.includes('at33'));
    assert.equal(s.summary.identities.train.length, 15);

    writeFileSync(csv, 'image1,image2,label\nnobody/x.pgm,an2i/an2i_left_angry_open_2.pgm,1\n');
    await assert.rejects(
      run({ ...ctx, inputs: { dataset: CMU_FACES(), test_pairs: csv } }),
      /pairs\.csv line 2: image nobody\/x\.pgm: file not found in the dataset folder .*cmu-faces \(looked for nobody\/x\.pgm\)/,
    );
  } finally {
    ctx.cleanup();
  }
});

test('split: clear errors for impossible splits and unknown params', async () => {
  const ctx = fakeContext(kind, { identities: { validation: 9, test: 10 } }, { dataset: CMU_FACES() });
  try {
    await assert.rejects(run(ctx), /only 1 identities left for training.*lower identities/);
  } finally {
    ctx.cleanup();
  }
  const validate = validator(kind.paramsSchema);
  assert.equal(validate({ pairs: { per_sett: 3 } }), false);
  const withDefaults: Record<string, unknown> = {};
  assert.equal(validate(withDefaults), true);
  assert.deepEqual(withDefaults, {
    seed: 0,
    dataset: { manifest: null, attribute_pattern: null, extensions: null, on_error: 'fail' },
    identities: { validation: 3, test: 6 },
    pairs: { per_set: null, cross_attribute: 'pose', csv_different_label: 1 },
  });
});

test('split: every listed image header is checked before anything trains; on_error: skip counts the bad ones', async () => {
  const ctx = fakeContext(kind, { identities: { validation: 2, test: 2 }, pairs: { per_set: 4 } }, { dataset: '' });
  try {
    // 8 identities of 4 copied CMU images each, plus a text file named .png and a truncated PGM.
    const data = join(ctx.workDir, 'faces');
    const ids = readdirSync(CMU_FACES(), { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort()
      .slice(0, 8);
    for (const id of ids) {
      mkdirSync(join(data, id), { recursive: true });
      for (const f of readdirSync(join(CMU_FACES(), id))
        .filter((f) => f.endsWith('.pgm'))
        .sort()
        .slice(0, 4))
        copyFileSync(join(CMU_FACES(), id, f), join(data, id, f));
    }
    writeFileSync(join(data, ids[0], 'notes.png'), 'this is not an image\n');
    const pgm = readdirSync(join(data, ids[1]))[0];
    const bytes = readFileSync(join(data, ids[1], pgm));
    writeFileSync(join(data, ids[1], 'cut.pgm'), bytes.subarray(0, bytes.length - 100));

    await assert.rejects(
      run({ ...ctx, inputs: { dataset: data } }),
      (e: Error) =>
        /2 of 34 listed images cannot be read: /.test(e.message) &&
        e.message.includes(`${ids[0]}/notes.png (`) &&
        e.message.includes(`${ids[1]}/cut.pgm (truncated file`) &&
        /set split\.dataset\.on_error: skip/.test(e.message),
    );
    const skip = { ...ctx, params: { ...ctx.params, dataset: { ...ctx.params.dataset, on_error: 'skip' as const } } };
    await run({ ...skip, inputs: { dataset: data } });
    const s = await readSplits(ctx.outputs.splits);
    const listed = [
      ...s.train.map((t) => t.file),
      ...[...s.validation, ...s.test].flatMap((p) => [p.image1, p.image2]),
    ];
    assert.ok(!listed.some((f) => f.endsWith('notes.png') || f.endsWith('cut.pgm')), 'bad images left out');
    assert.equal(ctx.recorded.skipped, 2);
    assert.ok(ctx.logs.some((l) => l.startsWith(`skipped ${ids[0]}/notes.png: cannot read image`)));
  } finally {
    ctx.cleanup();
  }
});

test('split: a manifest outside the dataset folder is refused (it would be read but not hashed)', async () => {
  const validate = validator(kind.paramsSchema);
  for (const manifest of ['../faces.csv', '/tmp/faces.csv', 'sub/../../faces.csv'])
    assert.equal(validate({ dataset: { manifest } }), false, manifest);
  for (const manifest of ['faces.csv', 'meta/faces.csv', '..faces.csv'])
    assert.equal(validate({ dataset: { manifest } }), true, manifest);
  const ctx = fakeContext(kind, {}, { dataset: CMU_FACES() });
  try {
    const outside = { ...ctx.params, dataset: { ...ctx.params.dataset, manifest: '../faces.csv' } };
    await assert.rejects(run({ ...ctx, params: outside }), /manifest \.\.\/faces\.csv is outside the dataset folder/);
  } finally {
    ctx.cleanup();
  }
});
