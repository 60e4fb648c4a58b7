import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listDataset } from '../../ml/data/dataset.js';
import { probeImages } from '../../ml/data/image.js';
import { createRng } from '../../ml/data/rng.js';
import type { StageContext, StageRun } from '../../contracts/stage-kind.js';
import {
  LABEL_CONVENTION,
  writeSplits,
  type Pair,
  type SplitSummary,
  type TrainImage,
} from '../shared/splits-format.js';
import type { SplitParams } from './kind.js';
import { readPairsFile } from './pairs-file.js';
import { countCross, generatePairs, groupByIdentity, splitIdentities } from './split.js';

type SetName = 'validation' | 'test';

interface GivenSet {
  pairs: Pair[];
  format: 'csv' | 'lfw';
  /** Identities of the pair images the listing holds (they go to this set, never to training). */
  identities: string[];
  /** Pair images in no listing: they need no identity. */
  unlisted: number;
}

/**
 * The listed images whose header (format, size) reads: checked here, so that a non-image fails now, not after
 * training. Under on_error: fail any other is an error; under skip it is left out, logged, and its reason kept.
 */
async function readableItems(
  ctx: StageContext<SplitParams>,
  listed: TrainImage[],
): Promise<{ items: TrainImage[]; skippedReason: Map<string, string>; bad: number }> {
  ctx.progress(`checking ${listed.length} image headers`);
  const unreadable = await probeImages(listed.map((i) => join(ctx.inputs.dataset, i.file)));
  const badOf = (i: TrainImage) => unreadable.get(join(ctx.inputs.dataset, i.file));
  const bad = listed.filter((i) => badOf(i) !== undefined);
  if (bad.length && ctx.params.dataset.on_error === 'fail') {
    const shown = bad.slice(0, 5).map((i) => `${i.file} (${badOf(i)})`);
    throw new Error(
      `${bad.length} of ${listed.length} listed images cannot be read: ${shown.join('; ')}${bad.length > 5 ? '; ...' : ''}. Fix or remove them, or set split.dataset.on_error: skip`,
    );
  }
  for (const i of bad) ctx.log(`skipped ${i.file}: cannot read image: ${badOf(i)}`);
  return {
    items: listed.filter((i) => badOf(i) === undefined),
    skippedReason: new Map(bad.map((i) => [i.file, `it cannot be read (${badOf(i)})`])),
    bad: bad.length,
  };
}

/** The pairs wired as inputs, resolved to dataset files. */
async function givenPairs(
  ctx: StageContext<SplitParams>,
  byFile: Map<string, TrainImage>,
  skippedReason: Map<string, string>,
): Promise<Partial<Record<SetName, GivenSet>>> {
  const out: Partial<Record<SetName, GivenSet>> = {};
  for (const set of ['validation', 'test'] as const) {
    const file = ctx.inputs[`${set}_pairs`];
    if (!file) continue;
    const { pairs, format } = await readPairsFile(await readFile(file, 'utf8'), file, {
      root: ctx.inputs.dataset,
      differentLabel: ctx.params.pairs.csv_different_label,
      listed: new Set(byFile.keys()),
      extensions: ctx.params.dataset.extensions ?? undefined,
      refused: (f) => skippedReason.get(f),
    });
    const images = new Set(pairs.flatMap((x) => [x.image1, x.image2]));
    const identities = new Set<string>();
    const unlisted: string[] = [];
    for (const img of images) {
      const item = byFile.get(img);
      if (item) identities.add(item.identity);
      else unlisted.push(img);
    }
    // Images in no listing had no header check yet; a given pair cannot be dropped, so any unreadable one fails.
    const unreadable = await probeImages(unlisted.map((f) => join(ctx.inputs.dataset, f)));
    const bad = unlisted.filter((f) => unreadable.has(join(ctx.inputs.dataset, f)));
    if (bad.length) {
      const shown = bad.slice(0, 5).map((f) => `${f} (${unreadable.get(join(ctx.inputs.dataset, f))})`);
      throw new Error(
        `${file}: ${bad.length} of its images cannot be read: ${shown.join('; ')}${bad.length > 5 ? '; ...' : ''}. Fix or remove them`,
      );
    }
    out[set] = { pairs, format, identities: [...identities], unlisted: unlisted.length };
    ctx.log(
      `${set} pairs from ${file} (${format === 'lfw' ? 'LFW pairs.txt' : 'CSV'}): ${pairs.length} pairs, ${images.size} images, ${unlisted.length} of them in no listing`,
    );
  }
  return out;
}

export const run: StageRun<SplitParams> = async (ctx) => {
  const p = ctx.params;
  const listing = await listDataset({
    root: ctx.inputs.dataset,
    manifest: p.dataset.manifest ?? undefined,
    attributePattern: p.dataset.attribute_pattern ?? undefined,
    extensions: p.dataset.extensions ?? undefined,
    onError: p.dataset.on_error,
  });
  for (const s of listing.skipped) ctx.log(`skipped ${s.file}: ${s.reason}`);
  const { items, skippedReason, bad } = await readableItems(ctx, listing.items);
  const byFile = new Map(items.map((i) => [i.file, i]));
  const groups = groupByIdentity(items);

  // User-given pairs fix their set's identities (those of their listed images); the others are drawn from the rest.
  const given = await givenPairs(ctx, byFile, skippedReason);
  const fixed: Partial<Record<SetName, string[]>> = {
    ...(given.validation ? { validation: given.validation.identities } : {}),
    ...(given.test ? { test: given.test.identities } : {}),
  };
  if (fixed.validation && fixed.test) {
    const overlap = fixed.validation.filter((i) => fixed.test!.includes(i));
    if (overlap.length > 0) ctx.log(`warning: validation and test pairs share identities ${overlap.join(', ')}`);
  }

  const ids = splitIdentities([...groups.keys()], p.identities, p.seed, fixed);
  // An image of a given pair never trains, whatever the listing says of it.
  const inPairs = new Set(Object.values(given).flatMap((g) => g.pairs.flatMap((x) => [x.image1, x.image2])));
  const train = ids.train.flatMap((id) => groups.get(id)!).filter((i) => !inPairs.has(i.file));
  if (new Set(train.map((t) => t.identity)).size < 2) {
    throw new Error(
      `only ${ids.train.length} identities left for training out of ${groups.size}; lower identities.validation / identities.test`,
    );
  }
  const attributes = [...new Set(items.flatMap((i) => Object.keys(i.attributes)))].sort();
  const crossAttr =
    p.pairs.cross_attribute !== null && attributes.includes(p.pairs.cross_attribute) ? p.pairs.cross_attribute : null;

  const pairsOf = {} as Record<SetName, Pair[]>;
  const pairStats = {} as SplitSummary['pairs'];
  for (const set of ['validation', 'test'] as const) {
    const g = given[set];
    const pairs = g?.pairs ?? generated(set, ids[set], groups, p, crossAttr);
    pairsOf[set] = pairs;
    const diff = pairs.filter((x) => x.different).length;
    const folds = new Set(pairs.flatMap((x) => (x.fold === undefined ? [] : [x.fold]))).size;
    pairStats[set] = {
      source: g ? g.format : 'generated',
      same: pairs.length - diff,
      different: diff,
      cross_attribute: countCross(pairs, byFile, crossAttr),
      ...(g ? { images_in_no_listing: g.unlisted } : {}),
      ...(folds ? { folds } : {}),
    };
  }
  const imagesIn = (pairs: Pair[]) => new Set(pairs.flatMap((x) => [x.image1, x.image2])).size;
  const summary: SplitSummary = {
    seed: p.seed,
    label_convention: LABEL_CONVENTION,
    attributes,
    identities: ids,
    images: { train: train.length, validation: imagesIn(pairsOf.validation), test: imagesIn(pairsOf.test) },
    pairs: pairStats,
  };
  // The validation identities' images (pretext measures held-out accuracy on them; they never train).
  const validationImages = ids.validation.flatMap((id) => groups.get(id) ?? []);
  await writeSplits(ctx.outputs.splits, {
    train,
    validationImages,
    validation: pairsOf.validation,
    test: pairsOf.test,
    summary,
  });
  ctx.log(`identities: train ${ids.train.length}, validation ${ids.validation.length}, test ${ids.test.length}`);
  if (listing.skipped.length + bad) ctx.log(`skipped ${listing.skipped.length + bad} entries in all`);
  ctx.metrics({
    skipped: listing.skipped.length + bad,
    train_identities: ids.train.length,
    train_images: train.length,
    validation_pairs: pairsOf.validation.length,
    test_pairs: pairsOf.test.length,
  });
};

/** Balanced pairs over a set's identities; an impossible set says which count to change. */
function generated(
  set: SetName,
  identities: string[],
  groups: Map<string, TrainImage[]>,
  p: SplitParams,
  crossAttr: string | null,
): Pair[] {
  try {
    return generatePairs(
      identities.flatMap((id) => groups.get(id)!),
      { perSet: p.pairs.per_set, crossAttribute: crossAttr, rng: createRng(`${p.seed}:${set}`) },
    ).pairs;
  } catch (e) {
    throw new Error(`${set} set (${identities.length} identities): ${(e as Error).message}; adjust identities.${set}`, {
      cause: e,
    });
  }
}

export default run;
