// Identity-disjoint split and balanced verification pairs (pure logic; run.ts does the I/O).
import { createRng, shuffleInPlace, type Rng } from '../../ml/data/rng.js';
import type { Pair, TrainImage } from '../shared/splits-format.js';

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A count (>= 1) or a fraction of `total` (< 1, rounded, at least 1 when positive). */
export function resolveCount(value: number, total: number): number {
  if (value <= 0) return 0;
  if (value < 1) return Math.max(1, Math.round(value * total));
  return Math.floor(value);
}

export function groupByIdentity(items: TrainImage[]): Map<string, TrainImage[]> {
  const groups = new Map<string, TrainImage[]>();
  for (const it of items) {
    let g = groups.get(it.identity);
    if (!g) groups.set(it.identity, (g = []));
    g.push(it);
  }
  return groups;
}

/**
 * Assigns identities to test and validation (seeded shuffle of the sorted names); the rest train.
 * `fixed` holds identities already taken by user-given pair CSVs.
 */
export function splitIdentities(
  identities: string[],
  counts: { validation: number; test: number },
  seed: number,
  fixed: { validation?: string[]; test?: string[] } = {},
): { train: string[]; validation: string[]; test: string[] } {
  const taken = new Set([...(fixed.validation ?? []), ...(fixed.test ?? [])]);
  const free = shuffleInPlace(createRng(`${seed}:identities`), identities.filter((i) => !taken.has(i)).sort(cmp));
  const total = identities.length;
  const test = fixed.test ?? free.splice(0, resolveCount(counts.test, total));
  const validation = fixed.validation ?? free.splice(0, resolveCount(counts.validation, total));
  return { train: free.sort(cmp), validation: [...validation].sort(cmp), test: [...test].sort(cmp) };
}

function isCross(a: TrainImage, b: TrainImage, attr: string | null): boolean {
  if (attr === null) return false;
  const x = a.attributes[attr];
  const y = b.attributes[attr];
  return x !== undefined && y !== undefined && x !== y;
}

/** Exhaustive enumeration of different-person pairs is used below this count; sampling above it. */
const ENUMERATE_LIMIT = 300_000;

/**
 * Balanced pairs over the images of some identities: same-person pairs (all of them, or `perSet`),
 * then as many different-person pairs. When `crossAttribute` exists in the data, pairs whose two images
 * differ in it (e.g. pose) are preferred: with perSet null only cross pairs are used (when there are any).
 */
export function generatePairs(
  items: TrainImage[],
  opts: { perSet: number | null; crossAttribute: string | null; rng: Rng },
): { pairs: Pair[]; cross: number } {
  const { rng } = opts;
  const groups = [...groupByIdentity(items).entries()].sort((a, b) => cmp(a[0], b[0]));
  if (groups.length < 2) throw new Error(`pairs need at least 2 identities, got ${groups.length}`);
  const attr =
    opts.crossAttribute !== null && items.some((i) => i.attributes[opts.crossAttribute!] !== undefined)
      ? opts.crossAttribute
      : null;

  const sameCross: Array<[TrainImage, TrainImage]> = [];
  const sameOther: Array<[TrainImage, TrainImage]> = [];
  for (const [, g] of groups) {
    for (let i = 0; i < g.length; i++) {
      for (let j = i + 1; j < g.length; j++) (isCross(g[i], g[j], attr) ? sameCross : sameOther).push([g[i], g[j]]);
    }
  }
  shuffleInPlace(rng, sameCross);
  shuffleInPlace(rng, sameOther);
  let same: Array<[TrainImage, TrainImage]>;
  if (opts.perSet === null) same = sameCross.length > 0 ? sameCross : sameOther;
  else same = [...sameCross, ...sameOther].slice(0, opts.perSet);
  if (same.length === 0) throw new Error('no same-person pairs: every identity has a single image');

  const wanted = same.length;
  const different = sampleDifferent(
    groups.map(([, g]) => g),
    wanted,
    attr,
    rng,
  );
  if (different.length < wanted) {
    throw new Error(
      `only ${different.length} different-person pairs exist for ${wanted} same-person pairs; set pairs.per_set lower`,
    );
  }
  let cross = 0;
  const pairs: Pair[] = [];
  for (const [a, b] of same) {
    if (isCross(a, b, attr)) cross++;
    pairs.push({ image1: a.file, image2: b.file, different: false });
  }
  for (const [a, b] of different) {
    if (isCross(a, b, attr)) cross++;
    pairs.push({ image1: a.file, image2: b.file, different: true });
  }
  return { pairs: shuffleInPlace(rng, pairs), cross };
}

function sampleDifferent(
  groups: TrainImage[][],
  wanted: number,
  attr: string | null,
  rng: Rng,
): Array<[TrainImage, TrainImage]> {
  const sizes = groups.map((g) => g.length);
  const total = sizes.reduce((a, b) => a + b, 0);
  const candidates = (total * total - sizes.reduce((a, s) => a + s * s, 0)) / 2;
  if (candidates <= ENUMERATE_LIMIT) {
    const cross: Array<[TrainImage, TrainImage]> = [];
    const other: Array<[TrainImage, TrainImage]> = [];
    for (let g = 0; g < groups.length; g++) {
      for (let h = g + 1; h < groups.length; h++) {
        for (const a of groups[g]) for (const b of groups[h]) (isCross(a, b, attr) ? cross : other).push([a, b]);
      }
    }
    shuffleInPlace(rng, cross);
    shuffleInPlace(rng, other);
    return [...cross, ...other].slice(0, wanted);
  }
  // Large sets: rejection sampling, cross pairs first, then any.
  const flat = groups.flatMap((g, gi) => g.map((item) => ({ item, gi })));
  const seen = new Set<string>();
  const out: Array<[TrainImage, TrainImage]> = [];
  for (const requireCross of attr !== null ? [true, false] : [false]) {
    let attempts = 0;
    while (out.length < wanted && attempts < 50 * wanted + 1000) {
      attempts++;
      const a = flat[Math.floor(rng() * flat.length)];
      const b = flat[Math.floor(rng() * flat.length)];
      if (a.gi === b.gi) continue;
      if (requireCross && !isCross(a.item, b.item, attr)) continue;
      const key = a.item.file < b.item.file ? `${a.item.file}\n${b.item.file}` : `${b.item.file}\n${a.item.file}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push([a.item, b.item]);
    }
  }
  return out;
}

/** Number of pairs whose two images differ in `attr` (pairs with an image in no listing do not count). */
export function countCross(pairs: Pair[], byFile: Map<string, TrainImage>, attr: string | null): number {
  let n = 0;
  for (const p of pairs) {
    const [a, b] = [byFile.get(p.image1), byFile.get(p.image2)];
    if (a && b && isCross(a, b, attr)) n++;
  }
  return n;
}
