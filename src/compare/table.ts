// The experiment comparison table: one row per experiment; by default the params that differ between
// experiments, the headline metrics (as the stage kinds declare them), duration and date (everything with
// `all`); sorting, filtering and the text, CSV, Markdown and JSON renderings used by `facepipe exps` (the HTML
// one is in report.ts). Seed replicates (aggregate.ts) are grouped into one row each: that changes rows, not the
// column choice; their metrics read mean ± std (n).
import { formatCsv as writeCsv } from '../core/csv.js';
import { didYouMean, FacepipeError } from '../core/errors.js';
import { aggregateCell, isStat, replicateGroups, statOf, type Stat, type TableCell } from './aggregate.js';
import type { CellValue, ExperimentRecord } from './load.js';

export type ColumnKind = 'meta' | 'param' | 'metric';

export interface Column {
  /** A meta column (META), a param `stage.key.path` or a metric `stage.metric`. */
  name: string;
  kind: ColumnKind;
  /** A param some experiment's sweep point set. */
  swept: boolean;
  /** A headline metric: of the main stage (the last one that declares headline metrics), or of another. */
  headline?: 'main' | 'other';
  /** How text formats show the value. */
  format?: 'duration' | 'date';
}

export interface Row {
  /** The experiment, or a group's first member (it stands for the group in `exps apply` and links). */
  experiment: ExperimentRecord;
  /** Seed replicates shown as this one row (2 or more); absent for a row of one experiment. */
  members?: ExperimentRecord[];
  cells: Record<string, TableCell>;
}

export interface Table {
  /** The columns shown, in order. */
  columns: Column[];
  /** Every column sort and filter accept (shown or not). */
  known: Column[];
  rows: Row[];
  /** How many experiments there were before filtering. */
  total: number;
  /** Columns left out so that the text table fits its width (fitColumns). */
  dropped?: Column[];
  /** Seed replicates were grouped (rows may have members). */
  aggregated?: boolean;
}

export type FilterOp = '=' | '!=' | '<' | '<=' | '>' | '>=' | '~';

export interface Filter {
  column: string;
  op: FilterOp;
  value: string;
  /** The text it was parsed from, for messages. */
  text: string;
}

export interface TableOptions {
  /** Show every param, not only those that differ. */
  allParams?: boolean;
  /** Show every column: constant params and metrics, backends, the pipeline and the run id. */
  all?: boolean;
  /** Column to sort by (default: experiment name). */
  sort?: string;
  desc?: boolean;
  /** Filter expressions such as `evaluate.auc>0.8`; all must hold. */
  filters?: string[];
  /** Show exactly these columns (after the experiment name), in this order, instead of the automatic choice. */
  columns?: string[];
  /**
   * Group experiments that differ only in seed params into one row (default true). Filters on params and meta
   * columns pick the experiments first; filters on metrics then judge the rows (a group by its mean).
   */
  aggregate?: boolean;
}

const META = ['experiment', 'pipeline', 'status', 'kept', 'rung', 'halving', 'lastRun', 'duration', 'date'] as const;

/** Metrics that say where a stage ran rather than how well: shown only with `all`. */
export function isEnvironmentMetric(name: string): boolean {
  return /(^|\.)(backend|adapter|runtime)$/.test(name);
}

function metaCell(e: ExperimentRecord, name: string): CellValue {
  switch (name) {
    case 'experiment':
      return e.name;
    case 'pipeline':
      return e.pipeline;
    case 'status':
      return e.status;
    case 'kept':
      return e.kept.length ? e.kept.join(',') : null;
    case 'rung':
      return e.sweep ? e.sweep.epochs : null;
    case 'halving':
      return e.sweep ? halvingText(e.sweep) : null;
    case 'lastRun':
      return e.lastRun;
    case 'duration':
      return e.durationMs === undefined ? null : Math.round(e.durationMs / 100) / 10;
    case 'date':
      return e.date || null;
    default:
      return null;
  }
}

/** A halving point's standing in a few words: "stopped: rank 5 of 9 at 20 epochs" (the epochs are `rung`). */
function halvingText(h: NonNullable<ExperimentRecord['sweep']>): string {
  const place = h.rank !== undefined && h.of !== undefined ? `: rank ${h.rank} of ${h.of}` : '';
  const at = `rung ${h.rung}/${h.rungs}`;
  const b = h.bracket ? `b${h.bracket.index}/${h.bracket.of} ` : '';
  switch (h.state) {
    case 'final':
      return `${b}final${place}`;
    case 'stopped':
    case 'promoted':
      return `${b}${h.state} at ${at}${place}`;
    case 'failed':
      return `${b}failed at ${at}`;
    default:
      return `${b}${h.state} at ${at}`;
  }
}

/** Headline metric columns (`stage.metric`) -> 'main' for the last stage that declares any, 'other' for the rest. */
function headlineColumns(exps: ExperimentRecord[]): Map<string, 'main' | 'other'> {
  const out = new Map<string, 'main' | 'other'>();
  for (const e of exps) {
    const stages = Object.entries(e.stages).filter(([, s]) => s.headline.length);
    stages.forEach(([stage, s], i) => {
      for (const h of s.headline) {
        const name = `${stage}.${h.metric}`;
        if (i === stages.length - 1) out.set(name, 'main');
        else if (!out.has(name)) out.set(name, 'other');
      }
    });
  }
  return out;
}

/** Every column the experiments have: meta, then params (swept ones first) and metrics in first-seen order. */
export function knownColumns(exps: ExperimentRecord[]): Column[] {
  const swept = new Set<string>();
  const params = new Set<string>();
  const metrics = new Set<string>();
  for (const e of exps) {
    for (const k of Object.keys(e.point)) swept.add(k);
    for (const k of Object.keys(e.params)) params.add(k);
    for (const k of Object.keys(e.metrics)) metrics.add(k);
  }
  const cols: Column[] = META.map((name) => ({
    name,
    kind: 'meta' as const,
    swept: false,
    format: name === 'duration' ? ('duration' as const) : name === 'date' ? ('date' as const) : undefined,
  }));
  for (const k of swept) cols.push({ name: k, kind: 'param', swept: true });
  for (const k of params) if (!swept.has(k)) cols.push({ name: k, kind: 'param', swept: false });
  // Headline metrics first (the main stage's in declared order), then the others as first seen.
  const headline = headlineColumns(exps);
  const rank = (k: string) => (headline.get(k) === 'main' ? 0 : headline.has(k) ? 1 : 2);
  const declared = [...headline.keys()];
  const ordered = [...metrics].sort((a, b) => rank(a) - rank(b) || declared.indexOf(a) - declared.indexOf(b));
  // A metric named like a param of the same stage is told apart by a suffix rather than silently shadowed.
  for (const k of ordered)
    cols.push({
      name: params.has(k) || swept.has(k) ? `${k}(metric)` : k,
      kind: 'metric',
      swept: false,
      headline: headline.get(k),
    });
  return cols;
}

export function cellOf(e: ExperimentRecord, col: Column): CellValue {
  if (col.kind === 'meta') return metaCell(e, col.name);
  if (col.kind === 'param') return col.name in e.params ? e.params[col.name]! : null;
  const name = col.name.endsWith('(metric)') ? col.name.slice(0, -'(metric)'.length) : col.name;
  return name in e.metrics ? e.metrics[name]! : null;
}

/** True when the column has more than one distinct value (a missing value counts as one) across the experiments. */
export function differs(exps: ExperimentRecord[], col: Column): boolean {
  const seen = new Set<string>();
  for (const e of exps) {
    const present = col.kind === 'param' ? col.name in e.params : true;
    seen.add(present ? JSON.stringify(cellOf(e, col)) : '\u0000absent');
    if (seen.size > 1) return true;
  }
  return false;
}

/** Find a column by exact name, else by a unique `.name` suffix (`auc` for `evaluate.auc`); errors name the known ones. */
export function resolveColumn(known: Column[], name: string, where: string): Column {
  const exact = known.find((c) => c.name === name);
  if (exact) return exact;
  const bySuffix = known.filter((c) => c.name.endsWith('.' + name));
  if (bySuffix.length === 1) return bySuffix[0];
  const names = known.map((c) => c.name);
  const guess = didYouMean(name, names);
  const ambiguous =
    bySuffix.length > 1 ? ` (matches ${bySuffix.map((c) => c.name).join(', ')}: use the full name)` : '';
  throw new FacepipeError({
    code: 'unknown-column',
    file: 'command line',
    message: `unknown column ${JSON.stringify(name)} in ${where}${ambiguous}${guess && !ambiguous ? `; did you mean ${JSON.stringify(guess)}?` : ''}`,
    hint: `known columns: ${names.join(', ')}`,
  });
}

const FILTER_RE = /^\s*([^<>=!~]+?)\s*(<=|>=|!=|==|=|<|>|~)\s*(.*?)\s*$/s;

export function parseFilter(text: string): Filter {
  const m = FILTER_RE.exec(text);
  if (!m || !m[1]) {
    throw new FacepipeError({
      code: 'bad-filter',
      file: 'command line',
      message: `bad --filter ${JSON.stringify(text)}`,
      hint: "use COLUMN OP VALUE with OP one of = != < <= > >= ~ (regular expression), e.g. --filter 'evaluate.auc>0.8' or --filter 'triarchy.loss.margin=0.3'",
    });
  }
  let value = m[3];
  const op = (m[2] === '==' ? '=' : m[2]) as FilterOp;
  // `a>>1` or `a=<1` is a typo, not a comparison with the text ">1"; quote such a value to mean it.
  const problem = /^[<>=!~]/.test(value)
    ? 'starts with an operator'
    : value === '' && op !== '=' && op !== '!='
      ? 'is missing'
      : undefined;
  if (problem) {
    throw new FacepipeError({
      code: 'bad-filter',
      file: 'command line',
      message: `bad --filter ${JSON.stringify(text)}: the value ${problem}`,
      hint: "use COLUMN OP VALUE with one operator, e.g. --filter 'evaluate.auc>0.8'; quote a value that starts with < > = ! or ~",
    });
  }
  if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0])
    value = value.slice(1, -1);
  return { column: m[1], op, value, text };
}

function asNumber(v: TableCell | string): number | undefined {
  if (isStat(v)) return v.mean;
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

function cellText(v: TableCell): string {
  return v === null ? '' : isStat(v) ? String(v.mean) : String(v);
}

/** Whether a cell passes a filter; a group's statistic is judged by its mean. */
export function matches(cell: TableCell, f: Filter): boolean {
  if (f.op === '~') {
    let re: RegExp;
    try {
      re = new RegExp(f.value);
    } catch (e) {
      throw new FacepipeError({
        code: 'bad-filter',
        file: 'command line',
        message: `bad regular expression in --filter ${JSON.stringify(f.text)}: ${(e as Error).message}`,
      });
    }
    return cell !== null && re.test(cellText(cell));
  }
  const a = asNumber(cell);
  const b = asNumber(f.value);
  if (f.op === '=' || f.op === '!=') {
    // Numbers equal within rounding, so margin=0.3 finds a swept 0.30000000000000004.
    const eq =
      a !== undefined && b !== undefined
        ? Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b))
        : cell === null
          ? f.value === '' || f.value === 'null'
          : cellText(cell) === f.value;
    return f.op === '=' ? eq : !eq;
  }
  if (cell === null) return false;
  let c: number;
  if (a !== undefined && b !== undefined) c = a - b;
  else if (a === undefined && b === undefined) c = cellText(cell).localeCompare(f.value);
  else return false; // a number against text (or the reverse) is neither larger nor smaller
  switch (f.op) {
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '>':
      return c > 0;
    default:
      return c >= 0;
  }
}

/**
 * Order of two cells: numbers numerically (before text; a statistic by its mean), text by code point, false before
 * true; empty cells last.
 */
export function compareCells(x: TableCell, y: TableCell, desc = false): number {
  const a = isStat(x) ? x.mean : x;
  const b = isStat(y) ? y.mean : y;
  if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
  const rank = (v: CellValue) => (typeof v === 'number' ? 0 : typeof v === 'boolean' ? 1 : 2);
  let c: number;
  if (rank(a) !== rank(b)) c = rank(a) - rank(b);
  else if (typeof a === 'number') c = a - (b as number);
  else if (typeof a === 'boolean') c = Number(a) - Number(b);
  else c = String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
  return desc ? -c : c;
}

export function buildTable(exps: ExperimentRecord[], o: TableOptions = {}): Table {
  const known = knownColumns(exps);
  const filters = (o.filters ?? []).map((t) => {
    const f = parseFilter(t);
    return { f, col: resolveColumn(known, f.column, `--filter ${JSON.stringify(t)}`) };
  });
  const sortCol = resolveColumn(known, o.sort ?? 'experiment', '--sort');

  const aggregate = o.aggregate ?? true;
  // Without grouping every filter judges experiments; with it, metric filters judge the groups (by their mean).
  const judgesRows = ({ col }: { col: Column }) => aggregate && col.kind === 'metric';
  const rowOf = (e: ExperimentRecord): Row => ({
    experiment: e,
    cells: Object.fromEntries(known.map((c) => [c.name, cellOf(e, c)])),
  });
  const picked = exps
    .map(rowOf)
    .filter((r) => filters.every((x) => judgesRows(x) || matches(r.cells[x.col.name] ?? null, x.f)));
  let rows = aggregate ? groupRows(picked, known) : picked;
  rows = rows.filter((r) => filters.every((x) => !judgesRows(x) || matches(r.cells[x.col.name] ?? null, x.f)));
  rows.sort(
    (x, y) =>
      compareCells(x.cells[sortCol.name] ?? null, y.cells[sortCol.name] ?? null, o.desc) ||
      compareCells(x.experiment.name, y.experiment.name),
  );

  // What differs is judged among the rows shown: filtering to one learning rate hides the learning rate
  // column unless it was swept.
  const kept = rows.length ? rows.flatMap((r) => r.members ?? [r.experiment]) : exps;
  const shown = chooseColumns(known, kept, o);
  if (o.columns?.length) {
    const chosen = o.columns.map((n) => resolveColumn(known, n, '--columns'));
    const experiment = known.find((c) => c.name === 'experiment')!;
    return {
      columns: [experiment, ...new Set(chosen.filter((c) => c !== experiment))],
      known,
      rows,
      total: exps.length,
      aggregated: aggregate,
    };
  }
  // Sorting by a hidden column shows it, just before the metrics.
  if (!shown.includes(sortCol)) {
    const firstMetric = shown.findIndex((c) => c.kind === 'metric');
    shown.splice(firstMetric < 0 ? shown.length : firstMetric, 0, sortCol);
  }

  return { columns: shown, known, rows, total: exps.length, aggregated: aggregate };
}

/** Every experiment the rows show (a group's members), in row order. */
export function rowExperiments(rows: Row[]): ExperimentRecord[] {
  return rows.flatMap((r) => r.members ?? [r.experiment]);
}

/** Rows of seed replicates become one row each: numeric metrics (and the duration) as statistics over the group. */
function groupRows(rows: Row[], known: Column[]): Row[] {
  const byExp = new Map(rows.map((r) => [r.experiment, r]));
  return replicateGroups(rows.map((r) => r.experiment)).map((members) => {
    const first = byExp.get(members[0])!;
    if (members.length === 1) return first;
    const values = (c: Column) => members.map((m) => (byExp.get(m)!.cells[c.name] ?? null) as CellValue);
    const cells: Record<string, TableCell> = {};
    for (const c of known) {
      if (c.kind === 'meta') cells[c.name] = groupMeta(c.name, members, values(c));
      else cells[c.name] = aggregateCell(values(c), c.kind === 'metric');
    }
    return { experiment: members[0], members, cells };
  });
}

function groupMeta(name: string, members: ExperimentRecord[], values: CellValue[]): TableCell {
  switch (name) {
    case 'experiment':
      return `${members[0].name} +${members.length - 1}`;
    case 'status':
      return members.find((m) => m.status !== 'ok')?.status ?? 'ok';
    case 'duration': {
      const n = values.filter((v): v is number => typeof v === 'number');
      return n.length ? statOf(n) : null;
    }
    case 'date':
    case 'lastRun':
      return values.reduce<CellValue>((a, b) => (a === null || (b !== null && String(b) > String(a)) ? b : a), null);
    default:
      return aggregateCell(values, false);
  }
}

/**
 * The default columns: the name; the pipeline and status when they differ; the params that differ (swept ones
 * always); the headline metrics (else the metrics that differ); duration and date. `all`: every column, but a
 * metric repeating an earlier one's values under the same name (prune.params, evaluate.params) only once.
 */
export function chooseColumns(known: Column[], exps: ExperimentRecord[], o: TableOptions = {}): Column[] {
  const anyHeadline = known.some((c) => c.headline && exps.some((e) => cellOf(e, c) !== null));
  const hasValue = (c: Column) => exps.some((e) => cellOf(e, c) !== null);
  const shown = known.filter((c) => {
    if (c.name === 'experiment') return true;
    if (c.kind === 'meta') {
      if (c.name === 'status') return exps.some((e) => e.status !== 'ok');
      if (['kept', 'rung', 'halving', 'duration', 'date'].includes(c.name)) return hasValue(c);
      return !!o.all && hasValue(c);
    }
    if (c.kind === 'param') return o.all || o.allParams || c.swept || differs(exps, c);
    if (!hasValue(c)) return false;
    if (o.all) return true;
    if (isEnvironmentMetric(c.name)) return false;
    if (anyHeadline) return !!c.headline;
    return exps.length < 2 || differs(exps, c);
  });
  const pipeline = known.find((c) => c.name === 'pipeline')!;
  if (!o.all && differs(exps, pipeline)) shown.splice(1, 0, pipeline);
  // Duration and date close the row, after the figures.
  const last = (c: Column) => c.name === 'duration' || c.name === 'date';
  const ordered = [...shown.filter((c) => !last(c)), ...shown.filter(last)];
  return o.all ? withoutRepeats(ordered, exps) : ordered;
}

/** Numeric metric columns whose last name part and values repeat an earlier metric column's, left out. */
function withoutRepeats(cols: Column[], exps: ExperimentRecord[]): Column[] {
  const metrics: Column[] = [];
  return cols.filter((c) => {
    if (c.kind !== 'metric' || !exps.some((e) => typeof cellOf(e, c) === 'number')) return true;
    const tail = c.name.slice(c.name.lastIndexOf('.') + 1);
    const same = metrics.find(
      (m) =>
        m.name.slice(m.name.lastIndexOf('.') + 1) === tail &&
        exps.every((e) => JSON.stringify(cellOf(e, m)) === JSON.stringify(cellOf(e, c))),
    );
    if (!same) metrics.push(c);
    return !same;
  });
}

/** A number for people: at most 6 significant digits, so 0.30000000000000004 reads 0.3. */
export function formatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return String(Number(n.toPrecision(6)));
}

/** 8.5 s, 1m05s, 2h03m (a duration column holds seconds). */
export function formatSeconds(s: number): string {
  if (s < 60) return `${s < 10 ? Number(s.toFixed(1)) : Math.round(s)} s`;
  const r = Math.round(s);
  if (r < 3600) return `${Math.floor(r / 60)}m${String(r % 60).padStart(2, '0')}s`;
  return `${Math.floor(r / 3600)}h${String(Math.floor((r % 3600) / 60)).padStart(2, '0')}m`;
}

/** An ISO time as local 'YYYY-MM-DD HH:MM' (unparseable text as it is). */
export function formatDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * A statistic for people: "0.871 ± 0.031 (n=3)", the mean to the decimals of the std's first two significant
 * digits; "0.871 (n=1)" when there is no spread to tell. A duration: "1m05s ± 4.2 s".
 */
export function formatStat(s: Stat, col?: Pick<Column, 'format'>): string {
  if (col?.format === 'duration')
    return s.std === null ? formatSeconds(s.mean) : `${formatSeconds(s.mean)} ± ${formatSeconds(s.std)}`;
  let text = formatNumber(s.mean);
  if (s.std === 0) text += ' ± 0';
  else if (s.std !== null) {
    // Rounded first, so that 0.00999... counts as 0.010 (two digits), not 0.0099.
    const decimals = Math.min(8, Math.max(0, 1 - Math.floor(Math.log10(Number(s.std.toPrecision(2))))));
    text = `${s.mean.toFixed(decimals)} ± ${s.std.toFixed(decimals)}`;
  }
  return `${text} (n=${s.n})`;
}

export function displayCell(v: TableCell, col?: Pick<Column, 'format'>): string {
  if (v === null) return '-';
  if (isStat(v)) return formatStat(v, col);
  if (col?.format === 'duration' && typeof v === 'number') return formatSeconds(v);
  if (col?.format === 'date' && typeof v === 'string') return formatDate(v);
  if (typeof v === 'number') return formatNumber(v);
  return String(v);
}

/** The shortest dotted suffix of `name` that no other of `names` ends with (margin for triarchy.loss.margin). */
export function shortName(name: string, names: string[]): string {
  const parts = name.split('.');
  for (let k = 1; k < parts.length; k++) {
    const suffix = parts.slice(-k).join('.');
    if (!names.some((n) => n !== name && (n === suffix || n.endsWith('.' + suffix)))) return suffix;
  }
  return name;
}

// ---- text -------------------------------------------------------------------------------------------------

function oneLine(s: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const flat = s.replace(/[\u0000-\u001f\u007f]+/g, ' ');
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
}

/** The text table's header and cells, as formatText prints them (short headers: `margin`, `auc`). */
function textCells(t: Table, maxWidth: number): { header: string[]; body: string[][]; numeric: boolean[] } {
  // Headers as short as the shown columns allow (`margin`, `auc`); --sort and --filter take them too when unique.
  const names = t.columns.map((c) => c.name);
  const header = t.columns.map((c) => oneLine(c.kind === 'meta' ? c.name : shortName(c.name, names), 1000));
  const body = t.rows.map((r) => t.columns.map((c) => oneLine(displayCell(r.cells[c.name] ?? null, c), maxWidth)));
  const numeric = t.columns.map(
    (c) =>
      !c.format &&
      t.rows.every((r) => {
        const v = r.cells[c.name];
        return v === null || typeof v === 'number' || isStat(v);
      }),
  );
  return { header, body, numeric };
}

/** Aligned plain-text table; short headers, numbers right-aligned, long text cut at `maxWidth` characters. */
export function formatText(t: Table, maxWidth = 40): string {
  if (!t.rows.length) return t.total ? `no experiment matches the filters (${t.total} in all)\n` : 'no experiments\n';
  const { header, body, numeric } = textCells(t, maxWidth);
  const width = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((s, i) => (numeric[i] ? s.padStart(width[i]) : s.padEnd(width[i])))
      .join('  ')
      .trimEnd();
  const out = [line(header), width.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  if (t.columns.some((c) => c.name === 'kept'))
    out.push('kept: stages showing their last complete figures (the last run did not complete them)');
  if (t.dropped?.length)
    out.push(
      `${t.dropped.length} more column${t.dropped.length === 1 ? '' : 's'} to fit the width (${t.dropped.map((c) => c.name).join(', ')}): --all, --columns or --width`,
    );
  return out.join('\n') + '\n';
}

/**
 * Leave out columns until the text table fits `width` characters: first other stages' metrics and params
 * that were not swept, then duration and date, then the main headline metrics beyond the first, then swept
 * params; the name, status and the sort column stay. What was left out is named under the table.
 */
export function fitColumns(t: Table, width = 120, keep: string[] = []): Table {
  const rank = (c: Column) => {
    if (c.kind === 'meta') return c.name === 'duration' || c.name === 'date' ? 3 : 9;
    if (keep.includes(c.name)) return 9;
    if (c.kind === 'param') return c.swept ? 5 : 1;
    return c.headline === 'main' ? 4 : 0;
  };
  let columns = [...t.columns];
  const dropped: Column[] = [];
  const fits = (cols: Column[]) => {
    const { header, body } = textCells({ ...t, columns: cols }, 40);
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
    return widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1) <= width;
  };
  while (!fits(columns)) {
    // The lowest rank, rightmost first; the first main headline metric stays with the swept params.
    const candidates = columns.filter(
      (c) => rank(c) < 9 && !(c.headline === 'main' && c === columns.find((x) => x.headline === 'main')),
    );
    if (!candidates.length) break;
    const low = Math.min(...candidates.map(rank));
    const drop = candidates.filter((c) => rank(c) === low).at(-1)!;
    columns = columns.filter((c) => c !== drop);
    dropped.unshift(drop);
  }
  return { ...t, columns, dropped };
}

// ---- CSV (RFC 4180) ---------------------------------------------------------------------------------------

/**
 * RFC 4180: CRLF line ends, fields with comma, quote or line break quoted, quotes doubled. Exact numbers. A column
 * with group statistics is three: NAME (the mean), NAME.std and NAME.n.
 */
export function formatCsv(t: Table): string {
  const stats = new Set(t.columns.filter((c) => t.rows.some((r) => isStat(r.cells[c.name]))).map((c) => c.name));
  const text = (v: TableCell | number | undefined) =>
    v === null || v === undefined ? '' : isStat(v) ? String(v.mean) : String(v);
  return writeCsv(
    [
      t.columns.flatMap((c) => (stats.has(c.name) ? [c.name, `${c.name}.std`, `${c.name}.n`] : [c.name])),
      ...t.rows.map((r) =>
        t.columns.flatMap((c) => {
          const v = r.cells[c.name] ?? null;
          if (!stats.has(c.name)) return [text(v)];
          if (isStat(v)) return [text(v), v.std === null ? '' : String(v.std), String(v.n)];
          return [text(v), '', typeof v === 'number' ? '1' : ''];
        }),
      ),
    ],
    { eol: '\r\n' },
  );
}

// ---- Markdown ---------------------------------------------------------------------------------------------

/** A Markdown table cell: pipes and backslashes escaped, HTML-significant characters as entities, one line. */
export function mdCell(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/`/g, '\\`')
    .replace(/\r\n|\r|\n/g, '<br>');
}

export function formatMd(t: Table): string {
  const numeric = t.columns.map((c) =>
    t.rows.every((r) => {
      const v = r.cells[c.name];
      return v === null || typeof v === 'number' || isStat(v);
    }),
  );
  const out = [
    `| ${t.columns.map((c) => mdCell(c.name)).join(' | ')} |`,
    `|${numeric.map((n) => (n ? ' ---: ' : ' --- ')).join('|')}|`,
    ...t.rows.map((r) => `| ${t.columns.map((c) => mdCell(displayCell(r.cells[c.name] ?? null, c))).join(' | ')} |`),
  ];
  return out.join('\n') + '\n';
}

// ---- JSON -------------------------------------------------------------------------------------------------

/** An array with one object per row, keys in column order, exact values ({ mean, std, n, values } for a group's), null for missing. */
export function formatJson(t: Table): string {
  return (
    JSON.stringify(
      t.rows.map((r) => Object.fromEntries(t.columns.map((c) => [c.name, r.cells[c.name] ?? null]))),
      null,
      2,
    ) + '\n'
  );
}
