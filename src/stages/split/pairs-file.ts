// Given verification pairs: a CSV (image1,image2,label) or an LFW pairs.txt. Each image is resolved to a file of
// the dataset folder; it needs no identity and no place in the dataset's listing (the 2020 challenge's validate/
// and test/ images appear in no manifest).
import { dirname, relative, resolve, sep } from 'node:path';
import { DEFAULT_IMAGE_EXTENSIONS, findInside } from '../../ml/data/dataset.js';
import { parsePairsCsv, type Pair } from '../shared/splits-format.js';

/** A pair as the file names it, before its images are resolved. */
interface NamedPair extends Pair {
  /** Where it was read, for errors: 'pairs.txt line 7'. */
  where: string;
  /** LFW: candidate stems (path without extension) instead of paths. */
  stems?: [string, string];
}

/** LFW's pairs.txt (and pairsDevTrain/Test.txt): a first line "folds pairs" or "pairs". */
export function looksLikeLfwPairs(text: string): boolean {
  const first = text.split(/\r?\n/).find((l) => l.trim() !== '');
  return first !== undefined && /^\s*\d+(\s+\d+)?\s*$/.test(first);
}

/**
 * LFW's format: the first line gives the folds and the pairs per fold (or only the pairs: one fold); each fold is
 * that many same-person lines `name n1 n2`, then as many different-person lines `name1 n1 name2 n2`. Images are
 * `<name>/<name>_<n as 4 digits>.<ext>`. Folds are numbered from 1.
 */
export function parseLfwPairs(text: string, file: string): NamedPair[] {
  const lines = text.split(/\r?\n/).map((l, i) => ({ n: i + 1, fields: l.trim().split(/\s+/) }));
  const body = lines.filter((l) => l.fields[0] !== '');
  const head = body.shift()!;
  const [folds, perFold] = head.fields.length === 2 ? head.fields.map(Number) : [1, Number(head.fields[0])];
  if (!(folds >= 1 && perFold >= 1))
    throw new Error(`${file} line ${head.n}: the first line must give folds and pairs per fold, e.g. "10 300"`);
  if (body.length !== folds * 2 * perFold)
    throw new Error(
      `${file}: the first line says ${folds} folds of ${perFold} same-person and ${perFold} different-person pairs (${folds * 2 * perFold} lines), but ${body.length} pair lines follow`,
    );
  const image = (name: string, n: string, where: string) => {
    if (!/^\d+$/.test(n)) throw new Error(`${where}: image number must be a whole number, got ${JSON.stringify(n)}`);
    return `${name}/${name}_${n.padStart(4, '0')}`;
  };
  return body.map((l, k) => {
    const where = `${file} line ${l.n}`;
    const fold = Math.floor(k / (2 * perFold)) + 1;
    const same = k % (2 * perFold) < perFold;
    const f = l.fields;
    if (same && f.length !== 3)
      throw new Error(`${where}: a same-person line reads "name n1 n2" (fold ${fold}), got ${f.length} fields`);
    if (!same && f.length !== 4)
      throw new Error(
        `${where}: a different-person line reads "name1 n1 name2 n2" (fold ${fold}), got ${f.length} fields`,
      );
    const stems: [string, string] = same
      ? [image(f[0], f[1], where), image(f[0], f[2], where)]
      : [image(f[0], f[1], where), image(f[2], f[3], where)];
    return { image1: stems[0], image2: stems[1], different: !same, fold, where, stems };
  });
}

export interface PairSource {
  pairs: Pair[];
  format: 'csv' | 'lfw';
}

/**
 * Reads a pairs file and resolves its images to dataset files (posix paths relative to `root`). CSV paths are
 * relative to the CSV's own folder when it lies inside the dataset folder, else to the dataset folder; LFW names
 * are looked up among the listed files, then on disk with the dataset's image extensions.
 */
export async function readPairsFile(
  text: string,
  file: string,
  opts: {
    root: string;
    differentLabel: 0 | 1;
    listed: Set<string>;
    extensions: string[] | 'any' | undefined;
    /** Why a dataset file may not be used (e.g. the header check skipped it), or undefined. */
    refused?: (file: string) => string | undefined;
  },
): Promise<PairSource> {
  const lfw = looksLikeLfwPairs(text);
  const named: NamedPair[] = lfw
    ? parseLfwPairs(text, file)
    : parsePairsCsv(text, file, opts.differentLabel).map((p, k) => ({ ...p, where: `${file} line ${k + 2}` }));
  const root = resolve(opts.root);
  const fileDir = dirname(resolve(file));
  const inRoot = !relative(root, fileDir).startsWith('..');
  const byStem = lfw ? stemIndex(opts.listed) : undefined;
  const exts = opts.extensions === 'any' || !opts.extensions ? DEFAULT_IMAGE_EXTENSIONS : opts.extensions;
  const resolved = new Map<string, string>();
  const one = async (name: string, where: string, stem: boolean): Promise<string> => {
    const key = `${stem ? 's' : 'p'}:${name}`;
    const hit = resolved.get(key);
    if (hit) return hit;
    let found: string | { reason: string };
    if (stem) {
      const listed = byStem!.get(name);
      // With any image extension, or none (extensions: any).
      const candidates = [...exts.map((e) => `${name}${e.startsWith('.') ? e : `.${e}`}`), name];
      found =
        listed ??
        (await findInside(
          root,
          candidates.map((c) => resolve(root, c)),
        ));
    } else {
      const candidates = [...(inRoot ? [resolve(fileDir, name)] : []), resolve(root, name)];
      const listed = candidates.map((c) => relative(root, c).split(sep).join('/')).find((r) => opts.listed.has(r));
      found = listed ?? (await findInside(root, candidates));
    }
    if (typeof found !== 'string') throw new Error(`${where}: image ${name}${stem ? '.<ext>' : ''}: ${found.reason}`);
    const why = opts.refused?.(found);
    if (why) throw new Error(`${where}: image ${found} was skipped: ${why}`);
    resolved.set(key, found);
    return found;
  };
  const pairs: Pair[] = [];
  for (const p of named) {
    const pair: Pair = {
      image1: await one(p.image1, p.where, !!p.stems),
      image2: await one(p.image2, p.where, !!p.stems),
      different: p.different,
    };
    if (p.fold !== undefined) pair.fold = p.fold;
    pairs.push(pair);
  }
  return { pairs, format: lfw ? 'lfw' : 'csv' };
}

/** Listed files by their path without the extension (LFW names images without one). */
function stemIndex(files: Set<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of [...files].sort()) {
    const stem = f.replace(/\.[^./]*$/, '');
    if (!out.has(stem)) out.set(stem, f);
  }
  return out;
}
