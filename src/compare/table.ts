// The experiment comparison table: one row per experiment, columns for the params that differ between
// experiments (all params with allParams) and every metric; sorting, filtering and the text, CSV, Markdown
// and JSON renderings used by `facepipe exps` (the HTML one is in report.ts).
import { formatCsv as writeCsv } from '../core/csv.js';
import { didYouMean, FacepipeError } from '../core/errors.js';
import type { CellValue, ExperimentRecord } from './load.js';

export type ColumnKind = 'meta' | 'param' | 'metric';

export interface Column {
  /** `experiment`, `pipeline`, `status`, `lastRun`, a param `stage.key.path` or a metric `stage.metric`. */
  name: string;
  kind: ColumnKind;
  /** A param some experiment's sweep point set. */
  swept: boolean;
}

export interface Row {
  experiment: ExperimentRecord;
  cells: Record<string, CellValue>;
}

export interface Table {
  /** The columns shown, in order. */
  columns: Column[];
  /** Every column sort and filter accept (shown or not). */
  known: Column[];
  rows: Row[];
  /** How many experiments there were before filtering. */
  total: number;
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
  /** Column to sort by (default: experiment name). */
  sort?: string;
  desc?: boolean;
  /** Filter expressions such as `evaluate.auc>0.8`; all must hold. */
  filters?: string[];
  /** Show exactly these columns (after the experiment name), in this order, instead of the automatic choice. */
  columns?: string[];
}

const META = ['experiment', 'pipeline', 'status', 'lastRun'] as const;

function metaCell(e: ExperimentRecord, name: string): CellValue {
  switch (name) {
    case 'experiment':
      return e.name;
    case 'pipeline':
      return e.pipeline;
    case 'status':
      return e.status;
    case 'lastRun':
      return e.lastRun;
    default:
      return null;
  }
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
  const cols: Column[] = META.map((name) => ({ name, kind: 'meta' as const, swept: false }));
  for (const k of swept) cols.push({ name: k, kind: 'param', swept: true });
  for (const k of params) if (!swept.has(k)) cols.push({ name: k, kind: 'param', swept: false });
  // A metric named like a param of the same stage is told apart by a suffix rather than silently shadowed.
  for (const k of metrics)
    cols.push({ name: params.has(k) || swept.has(k) ? `${k}(metric)` : k, kind: 'metric', swept: false });
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

function asNumber(v: CellValue | string): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

function cellText(v: CellValue): string {
  return v === null ? '' : String(v);
}

export function matches(cell: CellValue, f: Filter): boolean {
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

/** Order of two cells: numbers numerically (before text), text by code point, false before true; empty cells last. */
export function compareCells(a: CellValue, b: CellValue, desc = false): number {
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

  let rows: Row[] = exps.map((e) => ({
    experiment: e,
    cells: Object.fromEntries(known.map((c) => [c.name, cellOf(e, c)])),
  }));
  rows = rows.filter((r) => filters.every(({ f, col }) => matches(r.cells[col.name] ?? null, f)));
  rows.sort(
    (x, y) =>
      compareCells(x.cells[sortCol.name] ?? null, y.cells[sortCol.name] ?? null, o.desc) ||
      compareCells(x.experiment.name, y.experiment.name),
  );

  // What differs is judged among the rows shown: filtering to one learning rate hides the learning rate
  // column unless it was swept.
  const kept = rows.length ? rows.map((r) => r.experiment) : exps;
  const shown = known.filter((c) => {
    if (c.kind === 'metric') return kept.some((e) => cellOf(e, c) !== null);
    if (c.name === 'experiment') return true;
    if (c.name === 'pipeline') return differs(kept, c);
    if (c.name === 'status') return kept.some((e) => e.status !== 'ok');
    if (c.kind === 'meta') return false;
    return o.allParams || c.swept || differs(kept, c);
  });
  if (o.columns?.length) {
    const picked = o.columns.map((n) => resolveColumn(known, n, '--columns'));
    const experiment = known.find((c) => c.name === 'experiment')!;
    return {
      columns: [experiment, ...new Set(picked.filter((c) => c !== experiment))],
      known,
      rows,
      total: exps.length,
    };
  }
  // Sorting by a hidden column shows it, just before the metrics.
  if (!shown.includes(sortCol)) {
    const firstMetric = shown.findIndex((c) => c.kind === 'metric');
    shown.splice(firstMetric < 0 ? shown.length : firstMetric, 0, sortCol);
  }

  return { columns: shown, known, rows, total: exps.length };
}

/** A number for people: at most 6 significant digits, so 0.30000000000000004 reads 0.3. */
export function formatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return String(Number(n.toPrecision(6)));
}

export function displayCell(v: CellValue): string {
  if (v === null) return '-';
  if (typeof v === 'number') return formatNumber(v);
  return String(v);
}

// ---- text -------------------------------------------------------------------------------------------------

function oneLine(s: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const flat = s.replace(/[\u0000-\u001f\u007f]+/g, ' ');
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
}

/** Aligned plain-text table; numbers right-aligned, long text cut at `maxWidth` characters. */
export function formatText(t: Table, maxWidth = 40): string {
  if (!t.rows.length) return t.total ? `no experiment matches the filters (${t.total} in all)\n` : 'no experiments\n';
  const header = t.columns.map((c) => oneLine(c.name, 1000));
  const body = t.rows.map((r) => t.columns.map((c) => oneLine(displayCell(r.cells[c.name] ?? null), maxWidth)));
  const numeric = t.columns.map((c) =>
    t.rows.every((r) => {
      const v = r.cells[c.name];
      return v === null || typeof v === 'number';
    }),
  );
  const width = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((s, i) => (numeric[i] ? s.padStart(width[i]) : s.padEnd(width[i])))
      .join('  ')
      .trimEnd();
  const out = [line(header), width.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  return out.join('\n') + '\n';
}

// ---- CSV (RFC 4180) ---------------------------------------------------------------------------------------

/** RFC 4180: CRLF line ends, fields with comma, quote or line break quoted, quotes doubled. Exact numbers. */
export function formatCsv(t: Table): string {
  return writeCsv(
    [
      t.columns.map((c) => c.name),
      ...t.rows.map((r) =>
        t.columns.map((c) => {
          const v = r.cells[c.name] ?? null;
          return v === null ? '' : String(v);
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
      return v === null || typeof v === 'number';
    }),
  );
  const out = [
    `| ${t.columns.map((c) => mdCell(c.name)).join(' | ')} |`,
    `|${numeric.map((n) => (n ? ' ---: ' : ' --- ')).join('|')}|`,
    ...t.rows.map((r) => `| ${t.columns.map((c) => mdCell(displayCell(r.cells[c.name] ?? null))).join(' | ')} |`),
  ];
  return out.join('\n') + '\n';
}

// ---- JSON -------------------------------------------------------------------------------------------------

/** An array with one object per row, keys in column order, exact values, null for missing. */
export function formatJson(t: Table): string {
  return (
    JSON.stringify(
      t.rows.map((r) => Object.fromEntries(t.columns.map((c) => [c.name, r.cells[c.name] ?? null]))),
      null,
      2,
    ) + '\n'
  );
}
