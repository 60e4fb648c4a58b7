// facepipe exps: the experiments of the workspace side by side (params that differ, metrics), sorted,
// filtered, as a text table or --json / --csv / --md.
import { resolve } from 'node:path';
import { FacepipeError } from '../../core/errors.js';
import { loadExperiments } from '../../compare/load.js';
import { buildTable, formatCsv, formatJson, formatMd, formatText } from '../../compare/table.js';

export interface ExpsOptions {
  sort?: string;
  desc?: boolean;
  filter?: string[];
  json?: boolean;
  csv?: boolean;
  md?: boolean;
  allParams?: boolean;
  /** Comma-separated column names (repeatable). */
  columns?: string[];
  workspace?: string;
}

export function expsCommand(o: ExpsOptions): number {
  const formats = (['json', 'csv', 'md'] as const).filter((f) => o[f]);
  if (formats.length > 1) {
    throw new FacepipeError({
      code: 'bad-option',
      file: 'command line',
      message: `choose one output format, not ${formats.map((f) => '--' + f).join(' and ')}`,
    });
  }
  const root = resolve(o.workspace ?? process.cwd());
  const exps = loadExperiments(root, (w) => process.stderr.write(`warning: ${w}\n`));
  const columns = o.columns
    ?.flatMap((c) => c.split(','))
    .map((c) => c.trim())
    .filter(Boolean);
  const table = buildTable(exps, { sort: o.sort, desc: o.desc, filters: o.filter, allParams: o.allParams, columns });
  const format = formats[0];
  const text =
    format === 'json'
      ? formatJson(table)
      : format === 'csv'
        ? formatCsv(table)
        : format === 'md'
          ? formatMd(table)
          : formatText(table);
  process.stdout.write(text);
  if (!exps.length)
    process.stderr.write(
      `no experiments under ${root}/results (each run writes results/<experiment>/experiment.json)\n`,
    );
  return 0;
}
