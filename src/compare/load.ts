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
  /** How long computing the outputs took, and when it finished (a cached stage: the run that made them). */
  durationMs?: number;
  completedAt?: string;
  /** The metrics that sum the stage up, as its kind declares them. */
  headline: Array<{ metric: string; goal: 'max' | 'min' }>;
  /** Figures of an earlier run: the last run that did not complete the stage kept them (which run, what happened). */
  kept?: { run: string; state: string };
}

export interface HalvingStanding {
  rung: number;
  rungs: number;
  epochs: number;
  state: string;
  rank?: number;
  of?: number;
  /** Hyperband: the bracket the point was drawn for. */
  bracket?: { index: number; of: number };
  why: string;
}

export interface GitState {
  commit: string;
  dirty: boolean;
}

export interface ExperimentRecord {
  name: string;
  pipeline: string;
  lastRun: string;
  /** When the last run started (ISO), '' when unknown. */
  date: string;
  /** The workspace's git commit at the last run; null outside git, undefined in older records. */
  git?: GitState | null;
  /** The swept params of this experiment (flattened `stage.key.path` -> value), {} if none. */
  point: Record<string, CellValue>;
  /** Every stage param, flattened to `stage.key.path`. */
  params: Record<string, CellValue>;
  /** Every stage metric as `stage.metric`. */
  metrics: Record<string, CellValue>;
  /** 'ok' when every stage is done or cached, else the first other state with its stage, e.g. 'failed: train'. */
  status: string;
  stages: Record<string, StageSummary>;
  /** Sum of the stages' compute times (ms), undefined when no stage says. */
  durationMs?: number;
  /** Stages whose figures come from an earlier run (this experiment's last run did not complete them). */
  kept: string[];
  /** A halving sweep's point: the rung it reached and why it stopped there (or went on, or is running). */
  sweep?: HalvingStanding;
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
    const summary = stageSummary(s);
    stages[stage] = summary;
    flatten(summary.params, stage, params);
    for (const [m, v] of Object.entries(summary.metrics)) metrics[`${stage}.${m}`] = toCell(v);
    // A kept stage's own state is its earlier one; what happened in the last run is in `kept`.
    const state = summary.kept && summary.kept.state !== 'not-run' ? summary.kept.state : summary.state;
    if (status === 'ok' && state !== 'done' && state !== 'cached' && state !== 'not-run') status = `${state}: ${stage}`;
  }
  const point: Record<string, CellValue> = {};
  if (isObject(raw.point)) for (const [k, v] of Object.entries(raw.point)) point[k] = toCell(v);
  // A swept value the params don't show (should not happen) still belongs in the table.
  for (const [k, v] of Object.entries(point)) if (!(k in params)) params[k] = v;
  const durations = Object.values(stages).flatMap((s) => (s.durationMs !== undefined ? [s.durationMs] : []));
  const lastRun = typeof raw.lastRun === 'string' ? raw.lastRun : '';
  return {
    name: raw.experiment,
    pipeline: typeof raw.pipeline === 'string' ? raw.pipeline : '',
    lastRun,
    date: typeof raw.startedAt === 'string' ? raw.startedAt : runIdDate(lastRun),
    git: gitState(raw.git),
    point,
    params,
    metrics,
    status,
    stages,
    durationMs: durations.length ? durations.reduce((a, b) => a + b, 0) : undefined,
    kept: Object.keys(stages).filter((k) => stages[k].kept),
    ...(halvingStanding(raw.sweep) ? { sweep: halvingStanding(raw.sweep) } : {}),
    file,
  };
}

function halvingStanding(v: unknown): HalvingStanding | undefined {
  if (!isObject(v) || v.method !== 'halving') return undefined;
  const int = (x: unknown) => (Number.isInteger(x) ? (x as number) : undefined);
  const [rung, rungs, epochs] = [int(v.rung), int(v.rungs), int(v.epochs)];
  if (rung === undefined || rungs === undefined || epochs === undefined || typeof v.state !== 'string')
    return undefined;
  return {
    rung,
    rungs,
    epochs,
    state: v.state,
    rank: int(v.rank),
    of: int(v.of),
    ...(isObject(v.bracket) && int(v.bracket.index) && int(v.bracket.of)
      ? { bracket: { index: int(v.bracket.index)!, of: int(v.bracket.of)! } }
      : {}),
    why: typeof v.why === 'string' ? v.why : '',
  };
}

function stageSummary(s: unknown): StageSummary {
  const st = isObject(s) ? s : {};
  const headline: StageSummary['headline'] = [];
  for (const h of Array.isArray(st.headline) ? (st.headline as unknown[]) : [])
    if (isObject(h) && typeof h.metric === 'string' && (h.goal === 'max' || h.goal === 'min'))
      headline.push({ metric: h.metric, goal: h.goal });
  const kept =
    isObject(st.kept) && typeof st.kept.run === 'string' && typeof st.kept.state === 'string'
      ? { run: st.kept.run, state: st.kept.state }
      : undefined;
  return {
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
    durationMs: typeof st.durationMs === 'number' && Number.isFinite(st.durationMs) ? st.durationMs : undefined,
    completedAt: typeof st.completedAt === 'string' ? st.completedAt : undefined,
    headline,
    kept,
  };
}

function gitState(v: unknown): GitState | null | undefined {
  if (v === null) return null;
  if (isObject(v) && typeof v.commit === 'string' && typeof v.dirty === 'boolean')
    return { commit: v.commit, dirty: v.dirty };
  return undefined;
}

/** The start time a run id carries (2026-11-27T23-00-00-000-abcd), as ISO; '' when it has none. */
export function runIdDate(id: string): string {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d)-(\d\d)-(\d\d)-(\d{3})/.exec(id);
  return m ? `${m[1]}T${m[2]}:${m[3]}:${m[4]}.${m[5]}Z` : '';
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

/** One figure per epoch of one training stage, from the training.json it wrote beside its model. */
export interface TrainingCurves {
  stage: string;
  /** The training.json, relative to the workspace. */
  file: string;
  /** 'loss', its parts ('identity', 'triplet', 'center'), 'validation accuracy', ... -> points by epoch. */
  series: Record<string, Array<{ epoch: number; value: number }>>;
  bestEpoch?: number;
}

/** Short loss-part names the trainer records, for people. */
const PART_NAMES: Record<string, string> = { id: 'identity', tri: 'triplet', ctr: 'center' };

/** The curves of a training.json (`losses: [{epoch, loss, parts}]`, `validations: [{epoch, ...figures}]`). */
export function curvesFromTraining(v: unknown, stage: string, file: string): TrainingCurves | undefined {
  if (!isObject(v)) return undefined;
  const series: TrainingCurves['series'] = {};
  const add = (name: string, epoch: unknown, value: unknown) => {
    if (typeof epoch !== 'number' || typeof value !== 'number' || !Number.isFinite(value)) return;
    (series[name] ??= []).push({ epoch, value });
  };
  for (const l of Array.isArray(v.losses) ? (v.losses as unknown[]) : []) {
    if (!isObject(l)) continue;
    add('loss', l.epoch, l.loss);
    if (isObject(l.parts)) for (const [k, x] of Object.entries(l.parts)) add(PART_NAMES[k] ?? k, l.epoch, x);
  }
  for (const m of Array.isArray(v.validations) ? (v.validations as unknown[]) : []) {
    if (!isObject(m)) continue;
    for (const [k, x] of Object.entries(m)) if (k !== 'epoch') add(`validation ${k}`, m.epoch, x);
  }
  for (const pts of Object.values(series)) pts.sort((a, b) => a.epoch - b.epoch);
  if (!Object.keys(series).length) return undefined;
  return { stage, file, series, bestEpoch: typeof v.best_epoch === 'number' ? v.best_epoch : undefined };
}

/** Every stage output folder of an experiment that holds a training.json with curves, in stage order. */
export function loadTraining(root: string, exp: ExperimentRecord, maxBytes = 4 * 1024 * 1024): TrainingCurves[] {
  const out: TrainingCurves[] = [];
  for (const [stage, s] of Object.entries(exp.stages)) {
    for (const rel of Object.values(s.outputs)) {
      const file = join(rel, 'training.json');
      try {
        if (statSync(join(root, file)).size > maxBytes) continue;
        const c = curvesFromTraining(JSON.parse(readFileSync(join(root, file), 'utf8')), stage, file);
        if (c) out.push(c);
      } catch {
        /* none here, or unreadable: no curves */
      }
    }
  }
  return out;
}
