import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listDataset } from '../../ml/data/dataset.js';
import { probeImages } from '../../ml/data/image.js';
import { createRng } from '../../ml/data/rng.js';
import type { StageRun } from '../../contracts/stage-kind.js';
import {
  LABEL_CONVENTION,
  parsePairsCsv,
  writeSplits,
  type Pair,
  type SplitSummary,
  type TrainImage,
} from '../shared/splits-format.js';
import type { SplitParams } from './kind.js';
import { countCross, generatePairs, groupByIdentity, splitIdentities } from './split.js';

type SetName = 'validation' | 'test';

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
  // Every listed image's header (format, size) is checked here, so a non-image fails now, not after training.
  ctx.progress(`checking ${listing.items.length} image headers`);
  const unreadable = await probeImages(listing.items.map((i) => join(ctx.inputs.dataset, i.file)));
  const badOf = (i: TrainImage) => unreadable.get(join(ctx.inputs.dataset, i.file));
  const bad = listing.items.filter((i) => badOf(i) !== undefined);
  if (bad.length && p.dataset.on_error === 'fail') {
    const shown = bad.slice(0, 5).map((i) => `${i.file} (${badOf(i)})`);
    throw new Error(
      `${bad.length} of ${listing.items.length} listed images cannot be read: ${shown.join('; ')}${bad.length > 5 ? '; ...' : ''}. Fix or remove them, or set split.dataset.on_error: skip`,
    );
  }
  for (const i of bad) ctx.log(`skipped ${i.file}: cannot read image: ${badOf(i)}`);
  const skippedReason = new Map(bad.map((i) => [i.file, `it cannot be read (${badOf(i)})`]));
  const items: TrainImage[] = listing.items.filter((i) => badOf(i) === undefined);
  const byFile = new Map(items.map((i) => [i.file, i]));
  const groups = groupByIdentity(items);

  // User-given pairs fix their set's identities; the others are drawn from what is left.
  const given: Partial<Record<SetName, Pair[]>> = {};
  const fixed: Partial<Record<SetName, string[]>> = {};
  for (const set of ['validation', 'test'] as const) {
    const file = ctx.inputs[`${set}_pairs`];
    if (!file) continue;
    const pairs = parsePairsCsv(await readFile(file, 'utf8'), file, p.pairs.csv_different_label);
    const ids = new Set<string>();
    pairs.forEach((pair, k) => {
      for (const img of [pair.image1, pair.image2]) {
        const item = byFile.get(img);
        if (!item)
          throw new Error(
            skippedReason.has(img)
              ? `${file} line ${k + 2}: image ${img} was skipped: ${skippedReason.get(img)}`
              : `${file} line ${k + 2}: image ${img} is not in the dataset listing (paths are relative to the dataset folder)`,
          );
        ids.add(item.identity);
      }
    });
    given[set] = pairs;
    fixed[set] = [...ids];
  }
  if (fixed.validation && fixed.test) {
    const overlap = fixed.validation.filter((i) => fixed.test!.includes(i));
    if (overlap.length > 0) ctx.log(`warning: validation and test pairs share identities ${overlap.join(', ')}`);
  }

  const ids = splitIdentities([...groups.keys()], p.identities, p.seed, fixed);
  if (ids.train.length < 2) {
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
    let pairs = given[set];
    if (!pairs) {
      const setItems = ids[set].flatMap((id) => groups.get(id)!);
      try {
        pairs = generatePairs(setItems, {
          perSet: p.pairs.per_set,
          crossAttribute: crossAttr,
          rng: createRng(`${p.seed}:${set}`),
        }).pairs;
      } catch (e) {
        throw new Error(
          `${set} set (${ids[set].length} identities): ${(e as Error).message}; adjust identities.${set}`,
          { cause: e },
        );
      }
    }
    pairsOf[set] = pairs;
    const diff = pairs.filter((x) => x.different).length;
    pairStats[set] = {
      source: given[set] ? 'csv' : 'generated',
      same: pairs.length - diff,
      different: diff,
      cross_attribute: countCross(pairs, byFile, crossAttr),
    };
  }
  const imagesIn = (pairs: Pair[]) => new Set(pairs.flatMap((x) => [x.image1, x.image2])).size;
  const train = ids.train.flatMap((id) => groups.get(id)!);
  const summary: SplitSummary = {
    seed: p.seed,
    label_convention: LABEL_CONVENTION,
    attributes,
    identities: ids,
    images: { train: train.length, validation: imagesIn(pairsOf.validation), test: imagesIn(pairsOf.test) },
    pairs: pairStats,
  };
  await writeSplits(ctx.outputs.splits, { train, validation: pairsOf.validation, test: pairsOf.test, summary });
  ctx.log(`identities: train ${ids.train.length}, validation ${ids.validation.length}, test ${ids.test.length}`);
  if (listing.skipped.length + bad.length) ctx.log(`skipped ${listing.skipped.length + bad.length} entries in all`);
  ctx.metrics({
    skipped: listing.skipped.length + bad.length,
    train_identities: ids.train.length,
    train_images: train.length,
    validation_pairs: pairsOf.validation.length,
    test_pairs: pairsOf.test.length,
  });
};

export default run;
