// The on-disk format of a split (the `splits` folder), shared by every stage that consumes it.
//   train.csv       file,identity,<attribute columns...>   training images (paths relative to the dataset root)
//   validation.csv  image1,image2,label[,fold]              verification pairs, label 1 = different person; fold
//                                                           (1..k) when the pairs came with folds (LFW pairs.txt)
//   test.csv        image1,image2,label[,fold]              same format (the original challenge's, plus the fold)
//   validation_images.csv  file,identity,<attributes...>   every listed image of the validation identities
//                                                           (what pretext measures held-out accuracy on)
//   summary.json    identities per set, counts, attribute names, label convention
// No absolute paths: the files must be identical wherever the workspace lives (cache determinism).
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatCsv, parseCsv } from '../../core/csv.js';

export interface TrainImage {
  file: string;
  identity: string;
  attributes: Record<string, string>;
}

export interface Pair {
  image1: string;
  image2: string;
  /** True when the two images show different people (written as label 1). */
  different: boolean;
  /** The pair's fold (1..k) for a k-fold protocol, when the pairs came in folds (LFW's pairs.txt). */
  fold?: number;
}

export interface SplitSummary {
  seed: number;
  label_convention: string;
  attributes: string[];
  identities: { train: string[]; validation: string[]; test: string[] };
  images: { train: number; validation: number; test: number };
  pairs: Record<
    'validation' | 'test',
    {
      source: 'generated' | 'csv' | 'lfw';
      same: number;
      different: number;
      cross_attribute: number;
      /** Given pairs: how many of their images are in no listing (they have no identity). */
      images_in_no_listing?: number;
      /** Pairs that came in folds (LFW pairs.txt). */
      folds?: number;
    }
  >;
}

export const LABEL_CONVENTION = 'label 1 = different person, 0 = same person';

/** The pairs as CSV; a fold column only when the pairs have folds (so fold-less files keep the original format). */
export function pairsCsv(pairs: Pair[]): string {
  const folds = pairs.some((p) => p.fold !== undefined);
  const row = (p: Pair) => [p.image1, p.image2, p.different ? '1' : '0', ...(folds ? [String(p.fold ?? '')] : [])];
  return formatCsv([['image1', 'image2', 'label', ...(folds ? ['fold'] : [])], ...pairs.map(row)]);
}

export function trainCsv(images: TrainImage[], attributes: string[]): string {
  return formatCsv([
    ['file', 'identity', ...attributes],
    ...images.map((im) => [im.file, im.identity, ...attributes.map((a) => im.attributes[a] ?? '')]),
  ]);
}

function rowsOf(text: string, file: string): { header: string[]; rows: string[][] } {
  const rows = parseCsv(text, file);
  if (rows.length === 0) throw new Error(`${file}: empty CSV (a header row is required)`);
  return { header: rows[0].map((h) => h.trim()), rows: rows.slice(1) };
}

/**
 * Reads a pairs CSV with header image1,image2,label (and an optional fold column). `differentLabel` is the label
 * value that means "different person" (the original challenge: 1); the other of 0/1 means same person.
 */
export function parsePairsCsv(text: string, file: string, differentLabel: 0 | 1 = 1): Pair[] {
  const { header, rows } = rowsOf(text, file);
  const col = (name: string) => {
    const i = header.findIndex((h) => h.toLowerCase() === name);
    if (i < 0) throw new Error(`${file}: header must have columns image1,image2,label; found ${header.join(',')}`);
    return i;
  };
  const [c1, c2, cl] = [col('image1'), col('image2'), col('label')];
  const cf = header.findIndex((h) => h.toLowerCase() === 'fold');
  if (rows.length === 0) throw new Error(`${file}: no pairs (only a header)`);
  return rows.map((r, k) => {
    const where = `${file} line ${k + 2}`;
    if (r.length !== header.length) throw new Error(`${where}: ${r.length} fields, header has ${header.length}`);
    const label = r[cl].trim();
    if (label !== '0' && label !== '1') throw new Error(`${where}: label must be 0 or 1, got ${JSON.stringify(label)}`);
    const image1 = r[c1].trim().split('\\').join('/');
    const image2 = r[c2].trim().split('\\').join('/');
    if (!image1 || !image2) throw new Error(`${where}: empty image path`);
    const pair: Pair = { image1, image2, different: Number(label) === differentLabel };
    if (cf >= 0) {
      const fold = r[cf].trim();
      if (!/^[1-9]\d*$/.test(fold))
        throw new Error(`${where}: fold must be a whole number >= 1, got ${JSON.stringify(fold)}`);
      pair.fold = Number(fold);
    }
    return pair;
  });
}

export function parseTrainCsv(text: string, file: string): TrainImage[] {
  const { header, rows } = rowsOf(text, file);
  if (header[0] !== 'file' || header[1] !== 'identity')
    throw new Error(`${file}: expected header file,identity,...; found ${header.join(',')}`);
  const attrs = header.slice(2);
  return rows.map((r, k) => {
    if (r.length !== header.length)
      throw new Error(`${file} line ${k + 2}: ${r.length} fields, header has ${header.length}`);
    const attributes: Record<string, string> = {};
    attrs.forEach((a, i) => {
      attributes[a] = r[i + 2]!;
    });
    return { file: r[0], identity: r[1], attributes };
  });
}

export interface Splits {
  train: TrainImage[];
  /** The validation identities' images with their attributes; absent in splits written before split version 3. */
  validationImages?: TrainImage[];
  validation: Pair[];
  test: Pair[];
  summary: SplitSummary;
}

/** Reads a `splits` folder written by the split stage. Errors name the file. */
export async function readSplits(dir: string): Promise<Splits> {
  const read = async (name: string) => {
    const file = join(dir, name);
    try {
      return { text: await readFile(file, 'utf8'), file };
    } catch (e) {
      throw new Error(
        `cannot read ${file} (is the input wired to a split stage's 'splits' output?): ${(e as Error).message}`,
        { cause: e },
      );
    }
  };
  const t = await read('train.csv');
  const v = await read('validation.csv');
  const s = await read('test.csv');
  const j = await read('summary.json');
  const vi = join(dir, 'validation_images.csv');
  const validationImages = existsSync(vi) ? parseTrainCsv(await readFile(vi, 'utf8'), vi) : undefined;
  return {
    train: parseTrainCsv(t.text, t.file),
    ...(validationImages ? { validationImages } : {}),
    validation: parsePairsCsv(v.text, v.file, 1),
    test: parsePairsCsv(s.text, s.file, 1),
    summary: JSON.parse(j.text) as SplitSummary,
  };
}

export async function writeSplits(dir: string, splits: Splits): Promise<void> {
  await writeFile(join(dir, 'train.csv'), trainCsv(splits.train, splits.summary.attributes));
  if (splits.validationImages)
    await writeFile(join(dir, 'validation_images.csv'), trainCsv(splits.validationImages, splits.summary.attributes));
  await writeFile(join(dir, 'validation.csv'), pairsCsv(splits.validation));
  await writeFile(join(dir, 'test.csv'), pairsCsv(splits.test));
  await writeFile(join(dir, 'summary.json'), JSON.stringify(splits.summary, null, 2) + '\n');
}
