import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { CMU_FACES_PATTERN, identityIndex, labelsOf, listDataset, valueIndex } from '../../src/ml/data/dataset.js';
import { parseCsv } from '../../src/core/csv.js';
import { decodeImage, type Rgb8Image } from '../../src/ml/data/image.js';
import { ImageCache } from '../../src/ml/data/cache.js';
import { createRng, restoreRng } from '../../src/ml/data/rng.js';
import { pkEpoch, shuffledEpoch } from '../../src/ml/data/sampler.js';
import { augment, hflip, randomCrop, randomErase, rotate, type FloatImage } from '../../src/ml/data/augment.js';
import { checkImages, makeBatchProvider } from '../../src/ml/data/batches.js';
import { packageRoot } from '../../src/core/package-root.js';

await tf.setBackend('cpu');

const repoRoot = packageRoot;
const CMU = join(repoRoot(), 'data', 'cmu-faces');

test('listDataset: CMU faces folders with attributes from file names', async () => {
  const { items, skipped } = await listDataset({ root: CMU, attributePattern: CMU_FACES_PATTERN, onError: 'fail' });
  assert.equal(items.length, 624);
  assert.equal(skipped.length, 0);
  assert.equal(identityIndex(items).size, 20);
  const first = items[0];
  assert.match(first.file, /^an2i\/an2i_[a-z]+_[a-z]+_[a-z]+_2\.pgm$/);
  assert.equal(first.identity, 'an2i');
  assert.deepEqual(Object.keys(first.attributes).sort(), ['expression', 'eyes', 'pose']);
  assert.ok(['left', 'right', 'straight', 'up'].includes(first.attributes.pose));
  const poses = valueIndex(items, 'pose');
  assert.deepEqual([...poses.keys()], ['left', 'right', 'straight', 'up']);
  const fixed = valueIndex(items, 'pose', ['straight', 'left', 'right', 'up']);
  assert.equal(labelsOf(items, 'pose', fixed)[items.findIndex((i) => i.attributes.pose === 'straight')], 0);
  assert.throws(() => valueIndex(items, 'pose', ['left', 'right']), /pose 'straight' is not one of left, right/);
  assert.throws(() => valueIndex(items, 'angle'), /no attribute 'angle'/);
  const sorted = [...items].sort((a, b) => (a.identity + '\0' + a.file < b.identity + '\0' + b.file ? -1 : 1));
  assert.deepEqual(items, sorted);
});

async function tinyDataset(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'ds-'));
  for (const id of ['bob', 'amy']) {
    await mkdir(join(root, id));
    for (let i = 0; i < 3; i++) {
      await sharp({ create: { width: 8, height: 6, channels: 3, background: { r: 40 * i, g: 100, b: 200 } } })
        .png()
        .toFile(join(root, id, `${id}_front_${i}.png`));
    }
  }
  await writeFile(join(root, 'amy', 'notes.txt'), 'not an image');
  return root;
}

test('listDataset: manifest with attribute columns, error policy fail vs skip', async () => {
  const root = await tinyDataset();
  await writeFile(
    join(root, 'meta.csv'),
    'file_name,face_id,angle\n' +
      'bob/bob_front_0.png,P1,"C8"\n' +
      'amy/amy_front_1.png,P2,C1\n' +
      'amy/missing.png,P2,C1\n',
  );
  const skip = await listDataset({ root, manifest: 'meta.csv', onError: 'skip' });
  assert.deepEqual(
    skip.items.map((i) => [i.file, i.identity, i.attributes.angle]),
    [
      ['bob/bob_front_0.png', 'P1', 'C8'],
      ['amy/amy_front_1.png', 'P2', 'C1'],
    ],
  );
  assert.equal(skip.skipped.length, 1);
  assert.match(skip.skipped[0].reason, /file not found/);
  await assert.rejects(
    listDataset({ root, manifest: 'meta.csv', onError: 'fail' }),
    /amy\/missing\.png.*file not found/,
  );
  // Folder layout ignores non-image files; a pattern mismatch follows the policy.
  const folders = await listDataset({ root, onError: 'fail' });
  assert.equal(folders.items.length, 6);
  const pat = await listDataset({ root, attributePattern: '^bob_(?<view>[a-z]+)_', onError: 'skip' });
  assert.equal(pat.items.length, 3);
  assert.equal(pat.skipped.length, 3);
  assert.equal(pat.items[0].attributes.view, 'front');
  await assert.rejects(
    listDataset({ root, attributePattern: '^bob_', onError: 'fail' }),
    /does not match attributePattern/,
  );
  assert.deepEqual(parseCsv('a,"b,""c"""\r\n1,2\n'), [
    ['a', 'b,"c"'],
    ['1', '2'],
  ]);
});

test('decodeImage: PNG through sharp, grey PGM to 3 channels, CMU file resized', async () => {
  const root = await tinyDataset();
  const png = await decodeImage(join(root, 'bob', 'bob_front_2.png'), { width: 4, height: 4 });
  assert.deepEqual([...png.data.slice(0, 3)], [80, 100, 200]);
  const pgm = await decodeImage(join(CMU, 'an2i', 'an2i_left_angry_open_2.pgm'), { width: 32, height: 32 });
  assert.equal(pgm.data.length, 32 * 32 * 3);
  for (let i = 0; i < pgm.data.length; i += 3)
    assert.ok(pgm.data[i] === pgm.data[i + 1] && pgm.data[i] === pgm.data[i + 2]);
  await assert.rejects(
    decodeImage(join(root, 'amy', 'notes.txt'), { width: 4, height: 4 }),
    /cannot read image .*notes\.txt/,
  );
});

test('checkImages applies the policy to unreadable images', async () => {
  const root = await tinyDataset();
  await writeFile(join(root, 'amy', 'amy_front_9.png'), 'broken png');
  const { items } = await listDataset({ root, onError: 'fail' });
  const size = { width: 4, height: 4 };
  const r = await checkImages(root, items, size, new ImageCache(), 'skip');
  assert.equal(r.items.length, 6);
  assert.deepEqual(
    r.skipped.map((s) => s.file),
    ['amy/amy_front_9.png'],
  );
  await assert.rejects(checkImages(root, items, size, new ImageCache(), 'fail'), /amy_front_9\.png/);
});

test('cache: the second epoch decodes nothing; LRU budget bounds memory; spill dir avoids re-decoding', async () => {
  const { items } = await listDataset({ root: CMU, onError: 'fail' });
  const few = items.slice(0, 40);
  const labels = identityIndex(few);
  const size = { width: 16, height: 16 };
  const cache = new ImageCache();
  const provider = makeBatchProvider({
    root: CMU,
    items: few,
    labels: { identity: few.map((i) => labels.get(i.identity)!) },
    sampler: { kind: 'shuffle', batchSize: 8 },
    size,
    cache,
  });
  const rng = createRng(1);
  const drain = async (epoch: number) => {
    for await (const b of provider(epoch, rng)) {
      b.x.dispose();
      for (const t of Object.values(b.labels)) t.dispose();
    }
  };
  await drain(1);
  assert.equal(cache.stats.decodes, 40);
  await drain(2);
  assert.equal(cache.stats.decodes, 40, 'second epoch decoded again');
  assert.ok(cache.stats.memoryHits >= 40);

  let decodes = 0;
  const fake = (_file: string, s: { width: number; height: number }): Promise<Rgb8Image> => {
    decodes++;
    return Promise.resolve({
      width: s.width,
      height: s.height,
      data: new Uint8Array(s.width * s.height * 3).fill(decodes),
    });
  };
  const budget = 16 * 16 * 3 * 5; // five images
  const spillDir = await mkdtemp(join(tmpdir(), 'spill-'));
  const small = new ImageCache({ maxBytes: budget, spillDir, decode: fake });
  for (let i = 0; i < 20; i++) await small.get(`f${i}`, size);
  assert.ok(small.stats.bytes <= budget, `bytes ${small.stats.bytes} over budget`);
  assert.equal(small.stats.entries, 5);
  await new Promise((r) => setTimeout(r, 100)); // spills are written in the background
  assert.equal((await readdir(spillDir)).length, 15);
  const again = await small.get('f0', size);
  assert.equal(decodes, 20, 'spilled image was decoded again');
  assert.equal(small.stats.diskHits, 1);
  assert.equal(again.data[0], 1);
  const noSpill = new ImageCache({ maxBytes: budget, decode: fake });
  for (let i = 0; i < 6; i++) await noSpill.get(`g${i}`, size);
  await noSpill.get('g0', size);
  assert.equal(decodes, 27, 'evicted without spill dir decodes again');
});

test('P x K sampler: shape, seeded determinism, fewer-than-K policies, RNG state round trip', () => {
  // 5 identities; identity 4 has only 2 images.
  const labels = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4];
  const a = pkEpoch(labels, { p: 2, k: 3 }, createRng(7));
  const b = pkEpoch(labels, { p: 2, k: 3 }, createRng(7));
  assert.deepEqual(a, b);
  assert.equal(a.length, 2); // 5 identities -> 2 full groups of 2
  for (const batch of a) {
    assert.equal(batch.length, 6);
    const ids = batch.map((i) => labels[i]);
    assert.equal(ids[0], ids[2]);
    assert.equal(ids[3], ids[5]);
    assert.notEqual(ids[0], ids[3]);
    const firstId = ids[0];
    if (firstId !== 4) assert.equal(new Set(batch.slice(0, 3)).size, 3, 'without replacement when possible');
  }
  assert.notDeepEqual(pkEpoch(labels, { p: 2, k: 3 }, createRng(8)), a);
  for (let seed = 0; seed < 20; seed++) {
    const skip = pkEpoch(labels, { p: 2, k: 3, fewer: 'skip' }, createRng(seed)).flat();
    assert.ok(!skip.some((i) => labels[i] === 4), 'skip policy used identity 4');
  }
  assert.throws(() => pkEpoch(labels, { p: 5, k: 3, fewer: 'skip' }, createRng(1)), /4 usable identities/);

  const rng = createRng('x');
  shuffledEpoch(10, 3, rng);
  const state = rng.state();
  const cont = shuffledEpoch(10, 3, rng);
  assert.deepEqual(shuffledEpoch(10, 3, restoreRng(JSON.parse(JSON.stringify(state)))), cont);
  assert.equal(cont.length, 3); // drop last
  assert.equal(shuffledEpoch(10, 3, createRng(1), false).length, 4);
});

const ramp = (w: number, h: number): FloatImage => {
  const data = new Float32Array(w * h * 3);
  for (let i = 0; i < w * h; i++) data.fill(i + 1, 3 * i, 3 * i + 3);
  return { width: w, height: h, data };
};
const px = (img: FloatImage, x: number, y: number) => img.data[(y * img.width + x) * 3];

test('augmentations: flip, padded crop, rotation, erasing; same seed same output', () => {
  const img = ramp(4, 3);
  const f = hflip(img);
  assert.equal(px(f, 0, 0), px(img, 3, 0));
  assert.equal(px(f, 3, 2), px(img, 0, 2));
  // Padding 2 and a 4x3 crop: content shifted by at most 2 with zero fill; every value is 0 or from the image.
  for (let s = 0; s < 10; s++) {
    const c = randomCrop(img, 4, 3, 2, createRng(s));
    assert.equal(c.data.length, 36);
    for (const v of c.data) assert.ok(v === 0 || (v >= 1 && v <= 12));
  }
  assert.deepEqual(randomCrop(img, 4, 3, 0, createRng(0)).data, img.data);
  // 180 degrees about the centre maps (x, y) to (w-1-x, h-1-y); 0 degrees is the identity.
  const r = rotate(img, 180);
  assert.equal(px(r, 0, 0), px(img, 3, 2));
  assert.equal(px(r, 1, 2), px(img, 2, 0));
  assert.deepEqual(rotate(img, 0).data, img.data);
  // 90 degrees counter-clockwise on a square: the top-right corner moves to the top-left.
  const sq = ramp(3, 3);
  assert.equal(px(rotate(sq, 90), 0, 0), px(sq, 2, 0));
  const big = ramp(20, 20);
  const e = randomErase(big, { p: 1 }, createRng(3));
  const zeros = e.data.filter((v) => v === 0).length / 3;
  assert.ok(zeros >= 0.02 * 400 * 0.5 && zeros <= 0.33 * 400 * 1.5, `erased ${zeros} pixels`);
  const cfg = { flip: 0.5, crop: { width: 16, height: 16, padding: 2 }, rotation: 30, erasing: { p: 1 } };
  assert.deepEqual(augment(big, cfg, createRng(5)).data, augment(big, cfg, createRng(5)).data);
  assert.notDeepEqual(augment(big, cfg, createRng(5)).data, augment(big, cfg, createRng(6)).data);
});

test('batch provider: P x K batches of float images in [0,1], identical for the same seed', async () => {
  const { items } = await listDataset({ root: CMU, onError: 'fail' });
  const index = identityIndex(items);
  const identity = items.map((i) => index.get(i.identity)!);
  const opts = {
    root: CMU,
    items,
    labels: { identity },
    sampler: { kind: 'pk' as const, p: 4, k: 2 },
    size: { width: 12, height: 12 },
    augment: { flip: 0.5, crop: { width: 10, height: 10, padding: 1 } },
    cache: new ImageCache(),
  };
  const run = async (seed: number) => {
    const out: Array<{ x: number[]; y: number[] }> = [];
    for await (const b of makeBatchProvider(opts)(1, createRng(seed))) {
      assert.deepEqual(b.x.shape, [8, 10, 10, 3]);
      out.push({ x: Array.from(b.x.dataSync()), y: Array.from(b.labels.identity.dataSync()) });
      b.x.dispose();
      b.labels.identity.dispose();
    }
    return out;
  };
  const a = await run(3);
  assert.equal(a.length, 5); // 20 identities / P 4
  for (const b of a) for (const v of b.x) assert.ok(v >= 0 && v <= 1);
  assert.deepEqual(a[0].y.slice(0, 2), [a[0].y[0], a[0].y[0]]);
  assert.deepEqual(await run(3), a);
});
