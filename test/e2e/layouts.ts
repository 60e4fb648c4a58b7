// The dataset layouts facepipe reads, each built from the bundled CMU faces (data/cmu-faces), with a pipeline
// (the face-verification stages) wired to it. Used by the split tests and by the end-to-end run of each layout.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { CMU_FACES_PATTERN } from '../../src/ml/data/dataset.js';
import { netpbmToRgb8, parseNetpbm } from '../../src/ml/data/netpbm.js';
import { packageRoot } from '../../src/core/package-root.js';

export type LayoutName = 'identity-folders' | 'manifest' | 'challenge' | 'flat' | 'lfw';
export const LAYOUTS: LayoutName[] = ['identity-folders', 'manifest', 'challenge', 'flat', 'lfw'];

export interface CmuImage {
  identity: string;
  /** File name without the extension, e.g. an2i_left_angry_open_2. */
  stem: string;
  pose: string;
  expression: string;
  path: string;
}

/** Every bundled face, sorted by identity then name. */
export function cmuImages(): CmuImage[] {
  const root = join(packageRoot(), 'data', 'cmu-faces');
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .flatMap((identity) =>
      readdirSync(join(root, identity))
        .filter((f) => f.endsWith('.pgm'))
        .sort()
        .map((f) => {
          const stem = f.slice(0, -4);
          const [, pose, expression] = stem.split('_');
          return { identity, stem, pose, expression, path: join(root, identity, f) };
        }),
    );
}

/** Writes a bundled PGM as PNG, JPEG or GIF (or copies it as PGM). */
export async function convert(img: CmuImage, dest: string, format: 'png' | 'jpeg' | 'gif' | 'pgm'): Promise<void> {
  mkdirSync(join(dest, '..'), { recursive: true });
  const bytes = readFileSync(img.path);
  if (format === 'pgm') return writeFileSync(dest, bytes);
  const pgm = parseNetpbm(bytes, img.path);
  const s = sharp(netpbmToRgb8(pgm), { raw: { width: pgm.width, height: pgm.height, channels: 3 } });
  await (format === 'png' ? s.png() : format === 'jpeg' ? s.jpeg({ quality: 95 }) : s.gif()).toFile(dest);
}

const byIdentity = (images: CmuImage[]) => {
  const m = new Map<string, CmuImage[]>();
  for (const im of images) m.set(im.identity, [...(m.get(im.identity) ?? []), im]);
  return m;
};

/** Balanced pairs over some identities: `n` same-person (cross-pose first) and `n` different-person pairs. */
function pairsOver(groups: CmuImage[][], n: number): Array<[CmuImage, CmuImage, boolean]> {
  const same: Array<[CmuImage, CmuImage, boolean]> = [];
  const diff: Array<[CmuImage, CmuImage, boolean]> = [];
  for (let k = 0; same.length < n || diff.length < n; k++) {
    const g = groups[k % groups.length];
    const h = groups[(k + 1) % groups.length];
    const a = g[(3 * k) % g.length];
    const b = g[(3 * k + 7) % g.length];
    if (same.length < n && a !== b) same.push([a, b, false]);
    if (diff.length < n) diff.push([a, h[(5 * k + 2) % h.length], true]);
  }
  return [...same, ...diff];
}

const STAGES_AFTER_SPLIT = `
  pretext:
    kind: pretext
    inputs: { dataset: *dataset, splits: split.splits }
    params: { attributes: [pose, expression] }
  triarchy:
    kind: triarchy
    inputs: { dataset: *dataset, splits: split.splits, pretext: pretext.backbone }
    params: { init: pretext }
  prune:
    kind: prune
    inputs: { model: triarchy.model }
  evaluate:
    kind: evaluate
    inputs: { model: prune.model, dataset: *dataset, splits: split.splits }
`;

/** A five-stage face-verification pipeline whose split reads `datasetPath` with these extra inputs and params. */
export function layoutPipeline(
  name: string,
  datasetPath: string,
  extraInputs: Record<string, string>,
  splitParams: Record<string, unknown>,
  evaluateParams: Record<string, unknown> = {},
): string {
  const inputs = Object.entries(extraInputs)
    .map(([k, v]) => `\n      ${k}: { path: ${v} }`)
    .join('');
  let text = `name: ${name}
stages:
  split:
    kind: split
    inputs:
      dataset: &dataset { path: ${datasetPath} }${inputs}
    params: ${JSON.stringify(splitParams)}
${STAGES_AFTER_SPLIT}`;
  if (Object.keys(evaluateParams).length) text = text.trimEnd() + `\n    params: ${JSON.stringify(evaluateParams)}\n`;
  return text;
}

export interface BuiltLayout {
  /** The dataset folder, relative to the workspace. */
  dataset: string;
  /** pipelines/<layout>.yaml, relative to the workspace. */
  pipeline: string;
}

/**
 * Builds one layout in workspace `ws` under data/<layout>/ and writes its pipeline to pipelines/<layout>.yaml:
 * - identity-folders: data/identity-folders/<identity>/<name>.pgm (the bundled layout, copied);
 * - manifest: images/<n>.png in one folder, faces.csv with file,identity,pose,expression;
 * - challenge: the 2020 challenge's train/train_meta.csv (file_name,face_id) with train/<name>.jpg, and
 *   validate/validate_label.csv, test/test_label.csv (image1,image2,label; 1 = different) naming validate/<n>.jpg
 *   and test/<n>.jpg, images that appear in no manifest;
 * - flat: one folder of GIFs named <identity>_<pose>_<expression>_<eyes>.gif, the identity from the names;
 * - lfw: <name>/<name>_<4-digit n>.jpg and pairs.txt (10 folds of 3 same- and 3 different-person pairs).
 */
export async function buildLayout(ws: string, layout: LayoutName): Promise<BuiltLayout> {
  const dataset = `data/${layout}`;
  const root = join(ws, dataset);
  mkdirSync(root, { recursive: true });
  const images = cmuImages();
  const groups = byIdentity(images);
  const ids = [...groups.keys()];
  let pipeline: string;
  if (layout === 'identity-folders') {
    for (const im of images) await convert(im, join(root, im.identity, `${im.stem}.pgm`), 'pgm');
    pipeline = layoutPipeline(layout, dataset, {}, { dataset: { attribute_pattern: CMU_FACES_PATTERN } });
  } else if (layout === 'manifest') {
    const rows = ['file,identity,pose,expression'];
    for (const [i, im] of images.entries()) {
      const file = `images/${String(i).padStart(4, '0')}.png`;
      await convert(im, join(root, file), 'png');
      rows.push(`${file},${im.identity},${im.pose},${im.expression}`);
    }
    writeFileSync(join(root, 'faces.csv'), rows.join('\n') + '\n');
    pipeline = layoutPipeline(layout, dataset, {}, { dataset: { manifest: 'faces.csv' } });
  } else if (layout === 'challenge') {
    pipeline = await buildChallenge(root, dataset, groups, ids);
  } else if (layout === 'flat') {
    for (const im of images) await convert(im, join(root, `${im.stem}.gif`), 'gif');
    pipeline = layoutPipeline(layout, dataset, {}, { dataset: { attribute_pattern: CMU_FACES_PATTERN } });
  } else {
    pipeline = await buildLfw(root, dataset, groups, ids);
  }
  const file = `pipelines/${layout}.yaml`;
  mkdirSync(join(ws, 'pipelines'), { recursive: true });
  writeFileSync(join(ws, file), pipeline);
  return { dataset, pipeline: file };
}

/** The challenge layout: 14 training identities in the manifest, 3 validation and 3 test identities in pairs only. */
async function buildChallenge(
  root: string,
  dataset: string,
  groups: Map<string, CmuImage[]>,
  ids: string[],
): Promise<string> {
  const meta = ['file_name,face_id'];
  for (const id of ids.slice(0, 14))
    for (const im of groups.get(id)!) {
      await convert(im, join(root, 'train', `${im.stem}.jpg`), 'jpeg');
      meta.push(`${im.stem}.jpg,${id}`);
    }
  writeFileSync(join(root, 'train', 'train_meta.csv'), meta.join('\n') + '\n');
  const sets = [
    ['validate', 'validate_label.csv', ids.slice(14, 17)],
    ['test', 'test_label.csv', ids.slice(17, 20)],
  ] as const;
  for (const [folder, csv, setIds] of sets) {
    const names = new Map<CmuImage, string>();
    const name = (im: CmuImage) => {
      if (!names.has(im)) names.set(im, `${String(names.size).padStart(5, '0')}.jpg`);
      return names.get(im)!;
    };
    const rows = ['image1,image2,label'];
    for (const [a, b, different] of pairsOver(
      setIds.map((id) => groups.get(id)!),
      20,
    ))
      rows.push(`${name(a)},${name(b)},${different ? 1 : 0}`);
    for (const [im, n] of names) await convert(im, join(root, folder, n), 'jpeg');
    writeFileSync(join(root, folder, csv), rows.join('\n') + '\n');
  }
  return layoutPipeline(
    'challenge',
    dataset,
    { validation_pairs: `${dataset}/validate/validate_label.csv`, test_pairs: `${dataset}/test/test_label.csv` },
    { dataset: { manifest: 'train/train_meta.csv' } },
  );
}

/** LFW: every identity as <name>/<name>_NNNN.jpg; pairs.txt over 6 identities in 10 folds of 3 + 3 pairs. */
async function buildLfw(
  root: string,
  dataset: string,
  groups: Map<string, CmuImage[]>,
  ids: string[],
): Promise<string> {
  const number = new Map<CmuImage, number>();
  for (const id of ids)
    for (const [i, im] of groups.get(id)!.entries()) {
      number.set(im, i + 1);
      await convert(im, join(root, id, `${id}_${String(i + 1).padStart(4, '0')}.jpg`), 'jpeg');
    }
  const test = ids.slice(0, 6).map((id) => groups.get(id)!);
  const n = (im: CmuImage) => number.get(im)!;
  const lines = ['10\t3'];
  for (let f = 0; f < 10; f++) {
    for (let j = 0; j < 3; j++) {
      const g = test[(3 * f + j) % 6];
      lines.push(`${g[0].identity}\t${n(g[(2 * f + j) % g.length])}\t${n(g[(2 * f + j + 11) % g.length])}`);
    }
    for (let j = 0; j < 3; j++) {
      const [g, h] = [test[(3 * f + j) % 6], test[(3 * f + j + 1) % 6]];
      const [a, b] = [g[(5 * f + j) % g.length], h[(7 * f + 2 * j + 3) % h.length]];
      lines.push(`${a.identity}\t${n(a)}\t${b.identity}\t${n(b)}`);
    }
  }
  writeFileSync(join(root, 'pairs.txt'), lines.join('\n') + '\n');
  return layoutPipeline('lfw', dataset, { test_pairs: `${dataset}/pairs.txt` }, {}, { protocol: 'lfw10' });
}
