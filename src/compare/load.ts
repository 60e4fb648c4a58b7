// Loading experiments for comparison: results/<experiment>/experiment.json (written after every run by the
// runner), flattened into one param map and one metric map per experiment, plus any ROC points the
// evaluate stage left in its output folder.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseCsv } from '../core/csv.js';
import { FacepipeError } from '../core/errors.js';

/** A table cell: what params and metrics can hold once flattened. */
export type CellValue = string | number | boolean | null;

export interface RocSeries {
  /** Which pair set, e.g. 'test' or 'validation'. */
  label: string;
  far: number[];
  tar: number[];
}

export interface StageSummary {
  state: string;
  key?: string;
  params: Record<string, unknown>;
  metrics: Record<string, number | string>;
  outputs: Record<string, string>;
}

export interface ExperimentRecord {
  name: string;
  pipeline: string;
  lastRun: string;
  /** The swept params of this experiment (flattened `stage.key.path` -> value), {} if none. */
  point: Record<string, CellValue>;
  /** Every stage param, flattened to `stage.key.path`. */
  params: Record<string, CellValue>;
  /** Every stage metric as `stage.metric`. */
  metrics: Record<string, CellValue>;
  /** 'ok' when every stage is done or cached, else the first other state with its stage, e.g. 'failed: train'. */
  status: string;
  stages: Record<string, StageSummary>;
  /** The experiment.json this came from, relative to the workspace. */
  file: string;
}

/** Flatten nested objects to dotted keys; arrays and other non-scalars become their JSON text. */
export function flatten(
  value: unknown,
  prefix: string,
  into: Record<string, CellValue> = {},
): Record<string, CellValue> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    // An empty object adds no column: `env: {}` in one experiment and `env.X: p` in another differ in env.X only.
    for (const [k, v] of Object.entries(value as Record<string, unknown>))
      flatten(v, prefix ? `${prefix}.${k}` : k, into);
  } else if (prefix) {
    into[prefix] = toCell(value);
  }
  return into;
}

function toCell(v: unknown): CellValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  return JSON.stringify(v);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Parse one experiment.json; `file` is only for error messages. */
export function parseExperiment(text: string, file: string): ExperimentRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FacepipeError({
      code: 'bad-experiment',
      file,
      message: `${file} is not valid JSON (${(e as Error).message})`,
      hint: 'rerun the experiment (facepipe run) to rewrite it, or delete the folder',
    });
  }
  if (!isObject(raw) || typeof raw.experiment !== 'string' || !isObject(raw.stages)) {
    throw new FacepipeError({
      code: 'bad-experiment',
      file,
      message: `${file} is not an experiment summary (needs "experiment" and "stages")`,
      hint: 'rerun the experiment (facepipe run) to rewrite it, or delete the folder',
    });
  }
  const stages: Record<string, StageSummary> = {};
  const params: Record<string, CellValue> = {};
  const metrics: Record<string, CellValue> = {};
  let status = 'ok';
  for (const [stage, s] of Object.entries(raw.stages)) {
    const st = isObject(s) ? s : {};
    const summary: StageSummary = {
      state: typeof st.state === 'string' ? st.state : 'unknown',
      key: typeof st.key === 'string' ? st.key : undefined,
      params: isObject(st.params) ? st.params : {},
      metrics: isObject(st.metrics) ? (st.metrics as Record<string, number | string>) : {},
      outputs: isObject(st.outputs)
        ? (Object.fromEntries(Object.entries(st.outputs).filter(([, v]) => typeof v === 'string')) as Record<
            string,
            string
          >)
        : {},
    };
    stages[stage] = summary;
    flatten(summary.params, stage, params);
    for (const [m, v] of Object.entries(summary.metrics)) metrics[`${stage}.${m}`] = toCell(v);
    if (status === 'ok' && summary.state !== 'done' && summary.state !== 'cached')
      status = `${summary.state}: ${stage}`;
  }
  const point: Record<string, CellValue> = {};
  if (isObject(raw.point)) for (const [k, v] of Object.entries(raw.point)) point[k] = toCell(v);
  // A swept value the params don't show (should not happen) still belongs in the table.
  for (const [k, v] of Object.entries(point)) if (!(k in params)) params[k] = v;
  return {
    name: raw.experiment,
    pipeline: typeof raw.pipeline === 'string' ? raw.pipeline : '',
    lastRun: typeof raw.lastRun === 'string' ? raw.lastRun : '',
    point,
    params,
    metrics,
    status,
    stages,
    file,
  };
}

/**
 * All experiments of a workspace, sorted by name: every results/<name>/experiment.json. Unreadable summaries
 * are reported through `onWarning` and left out, so one broken folder does not hide the others.
 */
export function loadExperiments(root: string, onWarning: (message: string) => void = () => {}): ExperimentRecord[] {
  const results = join(root, 'results');
  if (!existsSync(results)) return [];
  const out: ExperimentRecord[] = [];
  for (const name of readdirSync(results).sort()) {
    if (name === 'runs') continue;
    const file = join(results, name, 'experiment.json');
    if (!existsSync(file)) continue;
    try {
      out.push(parseExperiment(readFileSync(file, 'utf8'), join('results', name, 'experiment.json')));
    } catch (e) {
      onWarning(e instanceof Error ? e.message : String(e));
    }
  }
  return out;
}

function numbers(v: unknown): number[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out = v.map((x) => (typeof x === 'number' ? x : typeof x === 'string' ? Number(x) : NaN));
  return out.every(Number.isFinite) ? out : undefined;
}

/** {far: [...], tar: [...]} (extra keys such as thresholds are ignored), or undefined. */
function rocFromObject(v: unknown, label: string): RocSeries | undefined {
  if (!isObject(v)) return undefined;
  const far = numbers(v.far ?? v.fpr);
  const tar = numbers(v.tar ?? v.tpr);
  if (!far || !tar || far.length !== tar.length || far.length < 2) return undefined;
  return { label, far, tar };
}

/** Every ROC found in a JSON value: itself, its `roc` key, or per-set entries (`test`, `validation`, `roc.test`, ...). */
function rocsFromJson(v: unknown): RocSeries[] {
  if (!isObject(v)) return [];
  const direct = rocFromObject(v, 'test') ?? rocFromObject(v.roc, 'test');
  if (direct) return [direct];
  const out: RocSeries[] = [];
  for (const holder of [v, isObject(v.roc) ? v.roc : undefined]) {
    if (!holder) continue;
    for (const [label, inner] of Object.entries(holder)) {
      const r = rocFromObject(inner, label) ?? (isObject(inner) ? rocFromObject(inner.roc, label) : undefined);
      if (r && !out.some((o) => o.label === label)) out.push(r);
    }
  }
  return out;
}

/** roc.csv with a header naming far/fpr and tar/tpr columns, optionally a set column (test, validation). */
export function rocsFromCsv(text: string): RocSeries[] {
  let rows: string[][];
  try {
    rows = parseCsv(text, 'roc.csv');
  } catch {
    return [];
  }
  if (rows.length < 3) return [];
  const head = rows[0].map((h) => h.trim().toLowerCase());
  const fi = head.findIndex((h) => h === 'far' || h === 'fpr');
  const ti = head.findIndex((h) => h === 'tar' || h === 'tpr');
  const si = head.findIndex((h) => h === 'set' || h === 'split' || h === 'label');
  if (fi < 0 || ti < 0) return [];
  const bySet = new Map<string, RocSeries>();
  for (const cells of rows.slice(1)) {
    const far = Number(cells[fi]);
    const tar = Number(cells[ti]);
    if (!Number.isFinite(far) || !Number.isFinite(tar)) continue;
    const label = si >= 0 ? (cells[si] ?? '').trim() || 'test' : 'test';
    let s = bySet.get(label);
    if (!s) bySet.set(label, (s = { label, far: [], tar: [] }));
    s.far.push(far);
    s.tar.push(tar);
  }
  return [...bySet.values()].filter((s) => s.far.length >= 2);
}

/**
 * ROC curves an experiment's stages wrote into their output folders: roc.json, roc.csv, or metrics.json with
 * a `roc` entry (overall or per pair set). The test-set curve comes first when there are several.
 */
export function loadRocs(root: string, exp: ExperimentRecord): RocSeries[] {
  const found: RocSeries[] = [];
  const stageNames = Object.keys(exp.stages).sort((a, b) => Number(b === 'evaluate') - Number(a === 'evaluate'));
  for (const stage of stageNames) {
    for (const rel of Object.values(exp.stages[stage].outputs)) {
      const dir = join(root, rel);
      let isDir: boolean;
      try {
        isDir = statSync(dir).isDirectory();
      } catch {
        continue;
      }
      if (!isDir) continue;
      const read = (f: string): string | undefined => {
        try {
          return readFileSync(join(dir, f), 'utf8');
        } catch {
          return undefined;
        }
      };
      let rocs: RocSeries[] = [];
      const rocJson = read('roc.json');
      if (rocJson !== undefined) {
        try {
          rocs = rocsFromJson(JSON.parse(rocJson));
        } catch {
          /* unreadable: try the others */
        }
      }
      if (!rocs.length) {
        const csv = read('roc.csv');
        if (csv !== undefined) rocs = rocsFromCsv(csv);
      }
      if (!rocs.length) {
        const m = read('metrics.json');
        if (m !== undefined) {
          try {
            rocs = rocsFromJson(JSON.parse(m));
          } catch {
            /* ignore */
          }
        }
      }
      if (rocs.length) {
        rocs.sort((a, b) => Number(b.label === 'test') - Number(a.label === 'test'));
        found.push(...rocs);
        return found;
      }
    }
  }
  return found;
}

/**
 * The first roc.png in an experiment's stage output folders, as a data: URI for the page (shown when the
 * experiment has no ROC points); undefined when there is none or it is larger than `maxBytes`.
 */
export function loadRocImage(
  root: string,
  exp: ExperimentRecord,
  maxBytes = 2 * 1024 * 1024,
): { file: string; dataUri: string } | undefined {
  for (const s of Object.values(exp.stages)) {
    for (const rel of Object.values(s.outputs)) {
      const file = join(rel, 'roc.png');
      try {
        if (statSync(join(root, file)).size > maxBytes) continue;
        return { file, dataUri: `data:image/png;base64,${readFileSync(join(root, file)).toString('base64')}` };
      } catch {
        /* none here */
      }
    }
  }
  return undefined;
}
