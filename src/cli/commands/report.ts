// facepipe report: one self-contained HTML page comparing the workspace's experiments (runs, best experiment,
// table, metric plots and heat maps, training curves, ROC curves, wall times), by default results/report.html.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { resolveForWrite } from '../../core/fsutil.js';
import { parseMetricOption } from '../../compare/best.js';
import {
  loadExperiments,
  loadRocImage,
  loadRocs,
  loadTraining,
  type RocSeries,
  type TrainingCurves,
} from '../../compare/load.js';
import { renderReport } from '../../compare/report.js';
import { buildTable, rowExperiments } from '../../compare/table.js';

export interface ReportOptions {
  out?: string;
  sort?: string;
  desc?: boolean;
  filter?: string[];
  all?: boolean;
  allParams?: boolean;
  /** The metric that picks the best experiment and colours heat maps, NAME[:max|:min]. */
  metric?: string;
  /** false (--no-aggregate): one row per experiment, seed replicates not grouped. */
  aggregate?: boolean;
  workspace?: string;
}

export function reportCommand(o: ReportOptions): number {
  const root = resolve(o.workspace ?? process.cwd());
  const exps = loadExperiments(root, (w) => process.stderr.write(`warning: ${w}\n`));
  const table = buildTable(exps, {
    sort: o.sort,
    desc: o.desc,
    filters: o.filter,
    all: o.all,
    allParams: o.allParams,
    aggregate: o.aggregate,
  });
  const metric =
    o.metric === undefined
      ? undefined
      : parseMetricOption(
          o.metric,
          table.known.filter((c) => c.kind === 'metric').map((c) => c.name),
          exps.flatMap((e) => Object.entries(e.stages).map(([stage, s]) => ({ stage, headline: s.headline }))),
        );
  const rocs = new Map<string, RocSeries[]>();
  const training = new Map<string, TrainingCurves[]>();
  const shown = rowExperiments(table.rows);
  for (const e of shown) {
    rocs.set(e.name, loadRocs(root, e));
    training.set(e.name, loadTraining(root, e));
  }
  // Without ROC points, the stage's own roc.png is shown instead (inline).
  const rocImages = new Map<string, { file: string; dataUri: string }>();
  for (const e of shown) {
    if (rocs.get(e.name)?.length) continue;
    const image = loadRocImage(root, e);
    if (image) rocImages.set(e.name, image);
  }
  const html = renderReport({ table, rocs, rocImages, training, metric, workspace: root, generatedAt: new Date() });
  // --out is the user's explicit choice of a path, anywhere (as for cp); the default stays inside the workspace.
  const out = o.out ? resolve(o.out) : resolveForWrite(root, join('results', 'report.html'), 'report');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, html);
  const withRoc = [...rocs.values()].filter((r) => r.length).length;
  const withCurves = [...training.values()].filter((c) => c.length).length;
  const pictures = rocImages.size ? `, ${rocImages.size} with a ROC picture only` : '';
  process.stdout.write(
    `wrote ${relative(process.cwd(), out) || out} (${shown.length} experiments${shown.length !== table.rows.length ? ` in ${table.rows.length} rows` : ''}, ${withRoc} with ROC curves${pictures}, ${withCurves} with training curves)\n`,
  );
  return 0;
}
