// facepipe exps: the experiments of the workspace side by side (params that differ, headline metrics, duration,
// date), sorted, filtered, as a text table that fits the terminal width or --json / --csv / --md;
// `exps diff A B` compares two experiments; `exps apply NAME` writes one's params as a config file.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { FacepipeError } from '../../core/errors.js';
import { resolveForWrite, writeFileAtomic } from '../../core/fsutil.js';
import { experimentConfig } from '../../compare/apply.js';
import { diffExperiments, findExperiment, formatDiffJson, formatDiffMd, formatDiffText } from '../../compare/diff.js';
import { loadExperiments, type ExperimentRecord } from '../../compare/load.js';
import {
  buildTable,
  fitColumns,
  formatCsv,
  formatJson,
  formatMd,
  formatText,
  resolveColumn,
} from '../../compare/table.js';
import { positiveInt } from '../session.js';

export interface ExpsOptions {
  sort?: string;
  desc?: boolean;
  filter?: string[];
  json?: boolean;
  csv?: boolean;
  md?: boolean;
  all?: boolean;
  allParams?: boolean;
  /** Comma-separated column names (repeatable). */
  columns?: string[];
  /** Characters the text table may take (default 120). */
  width?: string;
  /** false (--no-aggregate): one row per experiment, seed replicates not grouped. */
  aggregate?: boolean;
  workspace?: string;
}

function format(o: Pick<ExpsOptions, 'json' | 'csv' | 'md'>): 'json' | 'csv' | 'md' | undefined {
  const formats = (['json', 'csv', 'md'] as const).filter((f) => o[f]);
  if (formats.length > 1) {
    throw new FacepipeError({
      code: 'bad-option',
      file: 'command line',
      message: `choose one output format, not ${formats.map((f) => '--' + f).join(' and ')}`,
    });
  }
  return formats[0];
}

function load(workspace: string | undefined): { root: string; exps: ExperimentRecord[] } {
  const root = resolve(workspace ?? process.cwd());
  return { root, exps: loadExperiments(root, (w) => process.stderr.write(`warning: ${w}\n`)) };
}

export function expsCommand(o: ExpsOptions): number {
  const fmt = format(o);
  const { root, exps } = load(o.workspace);
  const columns = o.columns
    ?.flatMap((c) => c.split(','))
    .map((c) => c.trim())
    .filter(Boolean);
  let table = buildTable(exps, {
    sort: o.sort,
    desc: o.desc,
    filters: o.filter,
    all: o.all,
    allParams: o.allParams,
    columns,
    aggregate: o.aggregate,
  });
  if (!fmt && !o.all && !columns?.length) {
    const keep = o.sort ? [resolveColumn(table.known, o.sort, '--sort').name] : [];
    table = fitColumns(table, positiveInt('--width', o.width, 120), keep);
  }
  const text =
    fmt === 'json'
      ? formatJson(table)
      : fmt === 'csv'
        ? formatCsv(table)
        : fmt === 'md'
          ? formatMd(table)
          : formatText(table);
  process.stdout.write(text);
  if (!exps.length)
    process.stderr.write(
      `no experiments under ${root}/results (each run writes results/<experiment>/experiment.json)\n`,
    );
  return 0;
}

export interface DiffOptions {
  json?: boolean;
  md?: boolean;
  all?: boolean;
  workspace?: string;
}

export function expsDiffCommand(a: string, b: string, o: DiffOptions): number {
  const fmt = format(o);
  const { exps } = load(o.workspace);
  const d = diffExperiments(findExperiment(exps, a), findExperiment(exps, b), { all: o.all });
  process.stdout.write(fmt === 'json' ? formatDiffJson(d) : fmt === 'md' ? formatDiffMd(d) : formatDiffText(d));
  return 0;
}

export interface ApplyOptions {
  out?: string;
  force?: boolean;
  workspace?: string;
}

export function expsApplyCommand(name: string, o: ApplyOptions): number {
  const { root, exps } = load(o.workspace);
  const exp = findExperiment(exps, name);
  const rel = o.out ?? join('configs', `${exp.name}.yaml`);
  const file = resolveForWrite(root, rel, '--out');
  if (existsSync(file) && !o.force)
    throw new FacepipeError({
      code: 'file-exists',
      file: rel,
      message: `${rel} exists; nothing was written`,
      hint: 'choose another --out, or --force to replace it',
    });
  mkdirSync(dirname(file), { recursive: true });
  const shown = relative(root, file);
  writeFileAtomic(file, experimentConfig(exp, shown), { durable: false });
  process.stdout.write(
    `wrote ${shown}: the params of ${exp.name}\nrerun it: facepipe run ${exp.pipeline || 'PIPELINE'} --config ${shown}\n`,
  );
  return 0;
}
