// facepipe embed and verify on the model the tiny pipeline trains: the newest pruned model by default, the threshold of
// that model's evaluate stage, exit codes that say same (0) / different (1) / bad input (2) / failure (3), CSV, JSON
// and .npy agreeing with each other and with evaluate's own distances, any image format, and no TF.js on onnxruntime.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseNpyFloat32 } from '../../src/core/npy.js';
import { makeWorkspace, modulesLoadedBy, removeWorkspace, repoRoot, runCli } from '../engine/rig.js';
import { cmuImages, convert } from './layouts.js';

let ws: string;
const faces = 'data/cmu-faces';

before(async () => {
  ws = makeWorkspace();
  for (const d of ['pipelines', 'configs', faces]) cpSync(join(repoRoot(), d), join(ws, d), { recursive: true });
  const r = await runCli(
    ws,
    ['run', '--config', 'configs/tiny.yaml', '--progress', 'json', '--backend', 'wasm'],
    300_000,
  );
  assert.equal(r.code, 0, r.stderr + r.stdout.slice(-2000));
});
after(() => removeWorkspace(ws));

const cli = (args: string[], cwd = ws) => runCli(cwd, args, 120_000);
const metrics = () =>
  JSON.parse(readFileSync(join(ws, 'results/face-verification/evaluate/report/metrics.json'), 'utf8')) as {
    threshold: { value: number };
    embedding_dim: number;
  };
/** evaluate's test pairs with its distances and verdicts (label 1 = different: distance > threshold). */
const predictions = () =>
  readFileSync(join(ws, 'results/face-verification/evaluate/report/predictions.csv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => {
      const [image1, image2, label, distance] = l.split(',');
      return { image1: `${faces}/${image1}`, image2: `${faces}/${image2}`, label, distance: Number(distance) };
    });
const parseVerify = (stdout: string) => {
  const [d, t, verdict] = stdout.trim().split('\n');
  return { distance: Number(d.split(/\s+/)[1]), threshold: Number(t.split(/\s+/)[1]), from: t, verdict };
};

test("verify: evaluate's distance, the model's threshold, the verdict, and exit 0 same / 1 different", async () => {
  const m = metrics();
  const preds = predictions();
  const same = preds.find((p) => p.label === '0')!;
  const diff = preds.find((p) => p.label === '1')!;
  assert.ok(same && diff, 'the tiny model predicts both verdicts on its test pairs');
  for (const [p, code, verdict] of [
    [same, 0, 'same'],
    [diff, 1, 'different'],
  ] as const) {
    const r = await cli(['verify', p.image1, p.image2]);
    assert.equal(r.code, code, r.stderr);
    const v = parseVerify(r.stdout);
    assert.equal(v.verdict, verdict);
    assert.ok(Math.abs(v.distance - p.distance) <= 1e-5 * Math.max(1, p.distance), `${v.distance} vs ${p.distance}`);
    assert.equal(v.threshold, Number(m.threshold.value.toPrecision(6)));
    assert.match(v.from, /results\/face-verification\/evaluate\/report\/metrics\.json/);
    // --json says the same; --threshold overrides the model's.
    const j = await cli(['verify', p.image1, p.image2, '--json']);
    const o = JSON.parse(j.stdout) as { distance: number; threshold: number; same: boolean };
    assert.equal(j.code, code);
    assert.equal(o.same, code === 0);
    assert.equal(o.threshold, m.threshold.value);
    const flipped = await cli([
      'verify',
      p.image1,
      p.image2,
      '--threshold',
      String(code ? o.distance + 1 : o.distance / 2),
    ]);
    assert.equal(flipped.code, 1 - code, 'a threshold on the other side of the distance flips the verdict');
  }
  // TF.js embeds the same way (to float rounding).
  const tfjs = await cli(['verify', diff.image1, diff.image2, '--runtime', 'tfjs', '--backend', 'wasm']);
  assert.equal(tfjs.code, 1, tfjs.stderr);
  assert.ok(Math.abs(parseVerify(tfjs.stdout).distance - diff.distance) <= 1e-4 * Math.max(1, diff.distance));
});

test('embed: CSV to stdout, CSV / JSON / .npy files by extension, the same values in image order', async () => {
  const images = predictions()
    .slice(0, 3)
    .flatMap((p) => [p.image1, p.image2]);
  const dim = metrics().embedding_dim;
  const csv = await cli(['embed', ...images]);
  assert.equal(csv.code, 0, csv.stderr);
  const rows = csv.stdout.trim().split('\n');
  assert.deepEqual(rows[0].split(','), ['image', ...Array.from({ length: dim }, (_, d) => `e${d}`)]);
  const table = rows.slice(1).map((r) => r.split(','));
  assert.deepEqual(
    table.map((r) => r[0]),
    images,
  );
  const fromCsv = table.map((r) => r.slice(1).map(Number));
  for (const out of ['e.csv', 'e.json', 'e.npy']) {
    const r = await cli(['embed', ...images, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`${images.length} embeddings \\(${dim}-d`));
  }
  assert.equal(readFileSync(join(ws, 'e.csv'), 'utf8'), csv.stdout);
  const json = JSON.parse(readFileSync(join(ws, 'e.json'), 'utf8')) as {
    dim: number;
    embeddings: Array<{ image: string; embedding: number[] }>;
  };
  assert.equal(json.dim, dim);
  assert.deepEqual(
    json.embeddings.map((e) => e.image),
    images,
  );
  assert.deepEqual(
    json.embeddings.map((e) => e.embedding),
    fromCsv,
  );
  const npy = parseNpyFloat32(readFileSync(join(ws, 'e.npy')));
  assert.deepEqual(npy.shape, [images.length, dim]);
  assert.deepEqual(Array.from(npy.values), fromCsv.flat());
  // The embeddings give evaluate's distance of the first test pair.
  const d = Math.sqrt(fromCsv[0].reduce((a, v, k) => a + (v - fromCsv[1][k]) ** 2, 0));
  const first = predictions()[0].distance;
  assert.ok(Math.abs(d - first) <= 1e-5 * Math.max(1, first), `${d} vs ${first}`);
});

test('embed / verify: any format the dataset reader takes; a bad image is exit 2 naming it, nothing written', async () => {
  const im = cmuImages()[0];
  mkdirSync(join(ws, 'mine'), { recursive: true });
  await convert(im, join(ws, 'mine', 'face.gif'), 'gif');
  await convert(im, join(ws, 'mine', 'face.jpg'), 'jpeg');
  await convert(im, join(ws, 'mine', 'noext'), 'png');
  const pgm = `${faces}/${im.identity}/${im.stem}.pgm`;
  const gif = await cli(['verify', 'mine/face.gif', pgm]);
  assert.equal(gif.code, 0, gif.stderr);
  assert.ok(parseVerify(gif.stdout).distance < 1e-3, 'a GIF of the same grey pixels embeds the same');
  const many = await cli(['embed', 'mine/face.jpg', 'mine/noext', pgm]);
  assert.equal(many.code, 0, many.stderr);

  writeFileSync(join(ws, 'mine', 'broken.png'), 'not an image at all');
  const bad = await cli(['embed', pgm, 'mine/broken.png', '--out', 'never.npy']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /mine\/broken\.png.*cannot read image mine\/broken\.png/);
  assert.ok(!existsSync(join(ws, 'never.npy')), 'nothing written');
  const missing = await cli(['verify', pgm, 'mine/nope.jpg']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read image mine\/nope\.jpg/);
  const format = await cli(['embed', pgm, '--out', 'e.txt']);
  assert.equal(format.code, 2);
  assert.match(format.stderr, /--out e\.txt: unknown format '\.txt'.*\n.*fix: name the file \.csv, \.json or \.npy/);
});

test('--model: a copied model folder finds its evaluate threshold by content; without one verify needs --threshold', async () => {
  const pgm = (i: number) => `${faces}/${cmuImages()[i].identity}/${cmuImages()[i].stem}.pgm`;
  cpSync(join(ws, 'results/face-verification/prune/model'), join(ws, 'copy'), { recursive: true });
  const viaCopy = await cli(['verify', pgm(0), pgm(40), '--model', 'copy']);
  assert.ok(viaCopy.code === 0 || viaCopy.code === 1, viaCopy.stderr);
  assert.equal(parseVerify(viaCopy.stdout).threshold, Number(metrics().threshold.value.toPrecision(6)));

  // A folder whose content differs from every evaluated model's: no threshold known.
  const other = join(ws, 'other');
  cpSync(join(ws, 'results/face-verification/prune/model'), other, { recursive: true });
  writeFileSync(join(other, 'note.txt'), 'changed\n');
  const none = await cli(['verify', pgm(0), pgm(40), '--model', 'other']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /error\[no-threshold\]: no evaluate result for this model/);
  const given = await cli(['verify', pgm(0), pgm(40), '--model', 'other', '--threshold', '1e9']);
  assert.equal(given.code, 0, given.stderr);
  const notModel = await cli(['embed', pgm(0), '--model', 'data']);
  assert.equal(notModel.code, 2);
  assert.match(notModel.stderr, /error\[bad-model\]/);
});

test('verify: exit 2 with no trained model, 3 on any other failure (never 1, which means different)', async () => {
  const empty = makeWorkspace();
  try {
    const pgm = join(ws, faces, cmuImages()[0].identity, `${cmuImages()[0].stem}.pgm`);
    const none = await cli(['verify', pgm, pgm], empty);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /error\[no-model\]: no trained model/);
    // results/runs a file, not a folder: not bad input, a failure.
    mkdirSync(join(empty, 'results'));
    writeFileSync(join(empty, 'results', 'runs'), '');
    const broken = await cli(['verify', pgm, pgm], empty);
    assert.equal(broken.code, 3, broken.stderr);
    assert.match(broken.stderr, /ENOTDIR/);
  } finally {
    removeWorkspace(empty);
  }
});

test('embed on onnxruntime loads no TensorFlow.js module (the CLI stays fast to start)', () => {
  const pgm = `${faces}/${cmuImages()[0].identity}/${cmuImages()[0].stem}.pgm`;
  const r = modulesLoadedBy(ws, ['embed', pgm]);
  assert.equal(r.status, 0, r.stderr);
  const loaded = r.specifiers.join('\n');
  assert.match(loaded, /onnxruntime-node/, 'the hook saw the imports');
  assert.doesNotMatch(loaded, /@tensorflow/);
  // And --help loads no ML module at all.
  const help = modulesLoadedBy(ws, ['verify', '--help']);
  assert.equal(help.status, 0, help.stderr);
  assert.doesNotMatch(help.specifiers.join('\n'), /onnxruntime|sharp|@tensorflow/);
});
