// Dataset listing: a folder with one sub-folder per identity, a flat folder whose file names hold the identity
// (a pattern with a named group `identity`), or a CSV manifest (file, identity, optional attribute columns).
// Attributes can also come from file names through a regular expression with named groups.
import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { parseCsv } from '../../core/csv.js';
import { fileImageFormat } from './image-format.js';

export const DEFAULT_IMAGE_EXTENSIONS = [
  '.png',
  '.jpg',
  '.jpeg',
  '.webp',
  '.gif',
  '.tif',
  '.tiff',
  '.avif',
  '.pgm',
  '.ppm',
  '.pnm',
];

/** `extensions: any`: every file whose content is an image format facepipe reads, whatever its name. */
export const ANY_EXTENSION = 'any';

/** CMU faces file names: <userid>_<pose>_<expression>_<eyes>[_scale].pgm */
export const CMU_FACES_PATTERN = '^(?<identity>[^_]+)_(?<pose>[^_]+)_(?<expression>[^_]+)_(?<eyes>[^_.]+)';

export interface DatasetSpec {
  /** Folder holding the images (and identity sub-folders when there is no manifest). */
  root: string;
  /** CSV manifest path (absolute or relative to root). Header required; columns `file` and `identity`
   *  (aliases: file_name/path/image, face_id/label/id); every other column becomes an attribute. */
  manifest?: string;
  /** Regular expression with named groups applied to the file's base name; groups become attributes,
   *  and a group named `identity` overrides the folder/manifest identity. */
  attributePattern?: string;
  /** File extensions to list (with or without the dot, any case); default DEFAULT_IMAGE_EXTENSIONS. 'any': every
   *  file whose first bytes are an image format facepipe reads (for files without extensions). */
  extensions?: string[] | typeof ANY_EXTENSION;
  /** What to do with an entry that does not fit (pattern mismatch, missing file): fail or skip and report. */
  onError: 'fail' | 'skip';
}

export interface DatasetItem {
  /** Path relative to root, posix separators. */
  file: string;
  identity: string;
  attributes: Record<string, string>;
}

export interface DatasetListing {
  items: DatasetItem[];
  skipped: Array<{ file: string; reason: string }>;
}

export class DatasetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetError';
  }
}

const FILE_COLUMNS = ['file', 'file_name', 'filename', 'path', 'image'];
const IDENTITY_COLUMNS = ['identity', 'face_id', 'label', 'id', 'person'];

/** Which files of a folder listing are images: by extension, or by content for `extensions: any`. */
export function imageFilter(extensions: DatasetSpec['extensions']): {
  accepts: (file: string) => Promise<boolean>;
  what: string;
} {
  if (extensions === ANY_EXTENSION)
    return {
      accepts: async (f) => (await fileImageFormat(f)) !== undefined,
      what: 'any file whose content is an image',
    };
  const exts = (extensions ?? DEFAULT_IMAGE_EXTENSIONS).map((e) => (e.startsWith('.') ? e : `.${e}`).toLowerCase());
  return {
    accepts: (f) => Promise.resolve(exts.some((e) => f.toLowerCase().endsWith(e))),
    what: `extensions ${exts.join(', ')}`,
  };
}

/** True when the pattern has a named group `identity` (the file name then says whose face it is). */
const namesIdentity = (pattern: RegExp | undefined) => !!pattern && /\(\?<identity>/.test(pattern.source);

/** Lists a dataset, sorted by (identity, file) with a plain code-point comparison (locale-independent). */
export async function listDataset(spec: DatasetSpec): Promise<DatasetListing> {
  const root = resolve(spec.root);
  const filter = imageFilter(spec.extensions);
  let pattern: RegExp | undefined;
  if (spec.attributePattern !== undefined) {
    try {
      pattern = new RegExp(spec.attributePattern);
    } catch (e) {
      throw new DatasetError(`attributePattern is not a valid regular expression: ${(e as Error).message}`);
    }
  }
  const skipped: DatasetListing['skipped'] = [];
  const problem = (file: string, reason: string) => {
    if (spec.onError === 'fail') throw new DatasetError(`${file}: ${reason}`);
    skipped.push({ file, reason });
  };

  let raw: DatasetItem[];
  if (spec.manifest !== undefined) {
    // The manifest must be part of the dataset folder, whose digest is in the stage's key.
    const manifest = resolve(root, spec.manifest);
    const rel = relative(root, manifest);
    if (!rel || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel))
      throw new DatasetError(
        `manifest ${spec.manifest} is outside the dataset folder ${root}; move it into that folder`,
      );
    raw = await fromManifest(root, manifest, problem);
  } else {
    const found = await fromFolders(root, filter.accepts);
    raw = found.items;
    // Files at the top of the folder belong to nobody unless their names say who (a flat folder).
    if (namesIdentity(pattern)) raw.push(...found.loose.map((file) => ({ file, identity: '', attributes: {} })));
    else if (raw.length === 0 && found.loose.length > 0)
      throw new DatasetError(
        `${root} holds ${found.loose.length} images but no identity sub-folders: put each identity's images in a folder of its own, list them in a manifest (split.dataset.manifest), or name the identity in the file names with split.dataset.attribute_pattern (a named group identity, e.g. ^(?<identity>[^_]+)_)`,
      );
  }

  const items: DatasetItem[] = [];
  for (const item of raw) {
    if (pattern) {
      const base = posix.basename(item.file);
      const m = pattern.exec(base);
      if (!m) {
        problem(item.file, `file name does not match attributePattern ${spec.attributePattern}`);
        continue;
      }
      for (const [k, v] of Object.entries(m.groups ?? {})) {
        if (v === undefined) continue;
        if (k === 'identity') item.identity = v;
        else item.attributes[k] = v;
      }
    }
    if (!item.identity) {
      problem(item.file, `no identity: the pattern's identity group matched nothing in the name`);
      continue;
    }
    items.push(item);
  }
  items.sort((a, b) => cmp(a.identity, b.identity) || cmp(a.file, b.file));
  if (items.length === 0) throw new DatasetError(`no images found in ${spec.manifest ?? root} (${filter.what})`);
  return { items, skipped };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Images in identity sub-folders (any depth below them), and `loose`: images at the top of the folder. */
async function fromFolders(
  root: string,
  accepts: (file: string) => Promise<boolean>,
): Promise<{ items: DatasetItem[]; loose: string[] }> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (e) {
    throw new DatasetError(`cannot read dataset folder ${root}: ${(e as Error).message}`);
  }
  const items: DatasetItem[] = [];
  const loose: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    if (e.isFile()) {
      if (await accepts(join(root, e.name))) loose.push(e.name);
      continue;
    }
    if (!e.isDirectory()) continue;
    for (const file of await walk(join(root, e.name))) {
      if (!(await accepts(file))) continue;
      items.push({ file: relative(root, file).split(sep).join('/'), identity: e.name, attributes: {} });
    }
  }
  return { items, loose };
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

async function fromManifest(
  root: string,
  manifest: string,
  problem: (file: string, reason: string) => void,
): Promise<DatasetItem[]> {
  let text: string;
  try {
    text = await readFile(manifest, 'utf8');
  } catch (e) {
    throw new DatasetError(`cannot read manifest ${manifest}: ${(e as Error).message}`);
  }
  const rows = parseCsv(text, manifest);
  if (rows.length === 0)
    throw new DatasetError(`${manifest}: empty manifest (a header row with file and identity columns is required)`);
  const header = rows[0].map((h) => h.trim());
  const lower = header.map((h) => h.toLowerCase());
  const fileCol = lower.findIndex((h) => FILE_COLUMNS.includes(h));
  const idCol = lower.findIndex((h) => IDENTITY_COLUMNS.includes(h));
  if (fileCol < 0 || idCol < 0)
    throw new DatasetError(
      `${manifest}: header must name a file column (${FILE_COLUMNS.join('/')}) and an identity column (${IDENTITY_COLUMNS.join('/')}); found ${header.join(', ')}`,
    );
  const items: DatasetItem[] = [];
  for (let r = 1; r < rows.length; r++) {
    const row = rows[r];
    const where = `${manifest} line ${r + 1}`;
    if (row.length !== header.length) {
      problem(where, `has ${row.length} fields, header has ${header.length}`);
      continue;
    }
    const file = row[fileCol].trim().split('\\').join('/');
    const identity = row[idCol].trim();
    if (!file || !identity) {
      problem(where, 'empty file or identity');
      continue;
    }
    // Relative to the manifest's own folder (the challenge's train/train_meta.csv names train/<file>), else to the
    // dataset folder.
    const found = await findInside(root, [resolve(dirname(manifest), file), resolve(root, file)]);
    if (typeof found !== 'string') {
      problem(file, `${where}: ${found.reason}`);
      continue;
    }
    const rel = found;
    const attributes: Record<string, string> = {};
    header.forEach((h, i) => {
      if (i !== fileCol && i !== idCol) attributes[h] = row[i]!;
    });
    items.push({ file: rel, identity, attributes });
  }
  return items;
}

/** Leaves the dataset folder? (`rel` relative to it, posix) */
const outside = (rel: string) => rel === '..' || rel.startsWith('../') || rel.startsWith('/');

/**
 * The first candidate path that is a file inside `root`, as a posix path relative to it; else why none is.
 * Files outside the dataset folder are refused: the cache key covers the folder's content only.
 */
export async function findInside(root: string, candidates: string[]): Promise<string | { reason: string }> {
  const rels = [...new Set(candidates.map((c) => relative(root, c).split(sep).join('/')))];
  for (const rel of rels) {
    if (outside(rel)) continue;
    try {
      if ((await stat(join(root, rel))).isFile()) return rel;
    } catch {
      /* try the next */
    }
  }
  const inside = rels.filter((r) => !outside(r));
  if (inside.length === 0) return { reason: `path leaves the dataset folder ${root}` };
  return { reason: `file not found in the dataset folder ${root} (looked for ${inside.join(', ')})` };
}

/** Identity names to class indices 0..C-1 in sorted order (deterministic, unlike the original's set order). */
export function identityIndex(items: DatasetItem[]): Map<string, number> {
  return valueIndex(items, 'identity');
}

/**
 * Distinct values of `key` ('identity' or an attribute name) to indices 0..V-1 in sorted order, or in the
 * given `order` (e.g. the recipe's fixed angle map). A missing attribute or a value outside `order` is an error.
 */
export function valueIndex(items: DatasetItem[], key: string, order?: string[]): Map<string, number> {
  const value = (item: DatasetItem) => {
    const v = key === 'identity' ? item.identity : item.attributes[key];
    if (v === undefined)
      throw new DatasetError(
        `${item.file}: no attribute '${key}' (attributes: ${Object.keys(item.attributes).join(', ') || 'none'})`,
      );
    return v;
  };
  if (order) {
    const map = new Map(order.map((n, i) => [n, i]));
    for (const item of items)
      if (!map.has(value(item)))
        throw new DatasetError(`${item.file}: ${key} '${value(item)}' is not one of ${order.join(', ')}`);
    return map;
  }
  const names = [...new Set(items.map(value))].sort(cmp);
  return new Map(names.map((n, i) => [n, i]));
}

/** Per-item label indices for `key` (see valueIndex). */
export function labelsOf(items: DatasetItem[], key: string, index = valueIndex(items, key)): number[] {
  return items.map((item) => index.get(key === 'identity' ? item.identity : item.attributes[key])!);
}
