// Sweeps: expand a grid (every combination) or a seeded random sample into experiment points.
// A point maps dotted param paths (stage first) to values; its name is short and stable: a hash of the point.
import { createRequire } from 'node:module';
import type seedrandomLib from 'seedrandom';
import { FacepipeError, type Diagnostic } from '../core/errors.js';
import { canonicalJson, sha256 } from '../core/hash.js';
import { defineOwn, isPlainObject, nonFinitePaths, PROTOTYPE_KEYS } from '../core/objects.js';
import { schemaIssues, validator } from '../load/ajv.js';
import { withKeyPath } from '../load/files.js';
import { HALVING_KEYS, sweepSchema } from '../load/sweep-schema.js';

export type Domain =
  | { values: unknown[] }
  | { uniform: [number, number] }
  | { loguniform: [number, number] }
  | { range: [number, number, number] };

/** Successive halving over a training stage's epochs (src/plan/halving.ts plans the rungs). */
export interface HalvingSpec {
  /** `stage.metric` that ranks the points; default: the first headline metric of the last stage with epochs. */
  metric?: string;
  mode?: 'max' | 'min';
  eta: number;
  minEpochs: number;
  maxEpochs: number;
  /** Hyperband: several brackets of halving, each with its own random points and first rung. */
  hyperband?: true;
  /** Where each setting was given, for errors found once the pipeline is known. */
  where: Record<string, Partial<Diagnostic>>;
}

export interface SweepSpec {
  /** How the points are drawn: every combination, or `samples` seeded random ones. */
  method: 'grid' | 'random';
  /** Successive halving: the points are trained in rungs of growing epochs, the best 1/eta going on. */
  halving?: HalvingSpec;
  samples?: number;
  seed: number;
  params: Record<string, Domain>;
  /**
   * Seed replicates (--seeds N): every point once per k = 0..n-1, with each of `paths` (stage seed params) set to k,
   * together: one more sweep dimension of n values.
   */
  seeds?: { n: number; paths: string[] };
  /** Where each param was given (file:line:col of a sweep section, or the command line), for errors. */
  where?: Record<string, Partial<Diagnostic>>;
}

export type Point = Record<string, unknown>;

/** Most points a sweep may have unless --max-points raises it: every point is an experiment. */
export const DEFAULT_MAX_POINTS = 10_000;

const round = (x: number) => Number(x.toPrecision(6));

function sweepError(s: SweepSpec, path: string, message: string, hint: string): FacepipeError {
  return new FacepipeError({
    code: 'bad-sweep',
    message: `sweep ${path}: ${message}`,
    hint,
    file: 'command line',
    ...s.where?.[path],
  });
}

/** How many values a domain has on a grid; counted, never expanded, so a huge range costs nothing. */
function domainSize(s: SweepSpec, path: string, d: Domain): number {
  if ('values' in d) return d.values.length;
  if ('range' in d) {
    const [a, b, step] = d.range;
    if (![a, b, step].every(Number.isFinite))
      throw sweepError(s, path, 'range bounds must be finite', 'e.g. range(0, 1, 0.25)');
    if (!(step > 0)) throw sweepError(s, path, `range step must be > 0, got ${step}`, 'e.g. range(0, 1, 0.25)');
    return b < a ? 0 : Math.floor((b - a) / step + 1e-9) + 1;
  }
  throw sweepError(
    s,
    path,
    `${'uniform' in d ? 'uniform' : 'loguniform'} ranges need method: random (a grid needs a list of values)`,
    'add `method: random` and `samples: N` (or --samples N), or give a list',
  );
}

/** The i-th value of a range (by index, so a step below the bounds' precision cannot loop forever). */
const rangeValue = (d: { range: [number, number, number] }, i: number) => round(d.range[0] + i * d.range[2]);

function gridValues(s: SweepSpec, path: string, d: Domain): unknown[] {
  if ('values' in d) return d.values;
  const n = domainSize(s, path, d);
  const r = d as { range: [number, number, number] };
  const out = Array.from({ length: n }, (_, i) => rangeValue(r, i));
  if (new Set(out).size !== out.length)
    throw sweepError(
      s,
      path,
      `range(${r.range.join(', ')}) repeats values once rounded to 6 significant digits`,
      'use a larger step or smaller bounds',
    );
  return out;
}

/**
 * How many points the sweep has, checked before anything is expanded: every domain has a value, and the
 * count is within maxPoints. Returns the count.
 */
export function countPoints(s: SweepSpec, maxPoints = DEFAULT_MAX_POINTS): number {
  let count = 1;
  for (const [path, d] of Object.entries(s.params)) {
    if ('uniform' in d || 'loguniform' in d) {
      if (s.method === 'grid') domainSize(s, path, d); // throws: a grid needs values
      continue;
    }
    const n = domainSize(s, path, d);
    if (n === 0)
      throw sweepError(
        s,
        path,
        'has no values, so the sweep has no points',
        'give at least one value (range(a, b, step) needs a <= b)',
      );
    if (s.method === 'grid') count *= n;
  }
  if (s.method === 'random') count = s.samples ?? 0;
  if (s.seeds) count *= s.seeds.n;
  if (count > maxPoints) {
    const sizes = Object.entries(s.params)
      .filter(([, d]) => 'values' in d || 'range' in d)
      .map(([p, d]) => `${p}: ${domainSize(s, p, d).toLocaleString('en-US')}`)
      .join(', ');
    throw new FacepipeError({
      code: 'too-many-points',
      file: 'command line',
      message: `the sweep has ${count.toLocaleString('en-US')} points (${s.method === 'grid' ? sizes : 'samples'}${s.seeds ? `, x ${s.seeds.n} seeds` : ''}); the limit is ${maxPoints.toLocaleString('en-US')}`,
      hint: `sweep fewer values, use --samples N for a random sample, or raise the limit with --max-points ${Math.min(count, Number.MAX_SAFE_INTEGER)}`,
    });
  }
  return count;
}

export function expandSweep(s: SweepSpec, maxPoints = DEFAULT_MAX_POINTS): Point[] {
  countPoints(s, maxPoints);
  return withSeeds(expandPoints(s), s.seeds);
}

/** Each point once per seed k = 0..n-1, every seed path set to k (seeds innermost: a point's replicates adjoin). */
export function withSeeds(points: Point[], seeds: SweepSpec['seeds']): Point[] {
  if (!seeds) return points;
  return points.flatMap((pt) =>
    Array.from({ length: seeds.n }, (_, k) => ({ ...pt, ...Object.fromEntries(seeds.paths.map((p) => [p, k])) })),
  );
}

function expandPoints(s: SweepSpec): Point[] {
  const paths = Object.keys(s.params);
  if (s.method === 'grid') {
    let points: Point[] = [{}];
    for (const p of paths) {
      const vals = gridValues(s, p, s.params[p]);
      points = points.flatMap((pt) => vals.map((v) => ({ ...pt, [p]: v })));
    }
    return points;
  }
  const n = s.samples ?? 0;
  if (!(n > 0))
    throw new FacepipeError({
      code: 'bad-sweep',
      message: 'a random sweep needs samples: N (N > 0)',
      hint: 'add `samples: 8` or --samples 8',
    });
  // Required on first use: an ESM import of it would load with every start of the bundled CLI.
  const seedrandom = createRequire(import.meta.url)('seedrandom') as typeof seedrandomLib;
  const rng = seedrandom(String(s.seed));
  const points: Point[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < n * 20 && points.length < n; i++) {
    const pt: Point = {};
    for (const p of paths) {
      const d = s.params[p];
      if ('values' in d) pt[p] = d.values[Math.floor(rng() * d.values.length)];
      else if ('range' in d) pt[p] = rangeValue(d, Math.floor(rng() * domainSize(s, p, d)));
      else if ('uniform' in d) pt[p] = round(d.uniform[0] + rng() * (d.uniform[1] - d.uniform[0]));
      else {
        const [a, b] = d.loguniform;
        if (!(a > 0 && b > 0)) throw sweepError(s, p, 'loguniform bounds must be > 0', 'e.g. loguniform(1e-4, 1e-2)');
        pt[p] = round(Math.exp(Math.log(a) + rng() * (Math.log(b) - Math.log(a))));
      }
    }
    const k = canonicalJson(pt);
    if (!seen.has(k)) {
      seen.add(k);
      points.push(pt);
    }
  }
  return points;
}

export function pointName(base: string, pt: Point): string {
  return `${base}-${sha256(canonicalJson(pt)).slice(0, 6)}`;
}

/** --sweep a.b=1,2,3 (a list), a.b=range(0,1,0.25), a.b=uniform(0,1), a.b=loguniform(1e-4,1e-2). */
export function parseSweepArg(text: string, parseValue: (s: string) => unknown): [string, Domain] {
  const m = /^([^=]+)=(.+)$/.exec(text);
  if (!m || m[1].split('.').length < 2) {
    throw new FacepipeError({
      code: 'bad-sweep',
      file: 'command line',
      message: `bad --sweep ${JSON.stringify(text)}`,
      hint: 'use --sweep stage.param=v1,v2,... or stage.param=range(a,b,step)|uniform(a,b)|loguniform(a,b)',
    });
  }
  const path = m[1].trim();
  const proto = path.split('.').find((seg) => PROTOTYPE_KEYS.has(seg) || !seg);
  if (proto !== undefined)
    throw new FacepipeError({
      code: 'bad-sweep',
      file: 'command line',
      message: `bad --sweep ${JSON.stringify(text)}: ${proto ? `'${proto}' is not allowed in a key (it names an object's prototype)` : 'empty key segment'}`,
      hint: 'use --sweep stage.param=v1,v2,...',
    });
  const fn = /^(range|uniform|loguniform)\(([^)]*)\)$/.exec(m[2].trim());
  if (fn) {
    const nums = fn[2].split(',').map((x) => Number(x.trim()));
    const want = fn[1] === 'range' ? 3 : 2;
    if (nums.length !== want || nums.some((x) => !Number.isFinite(x))) {
      throw new FacepipeError({
        code: 'bad-sweep',
        file: 'command line',
        message: `--sweep ${text}: ${fn[1]} takes ${want} numbers`,
      });
    }
    return [path, { [fn[1]]: nums } as Domain];
  }
  const values = m[2].split(',').map((v) => parseValue(v.trim()));
  if (nonFinitePaths(values).length)
    throw new FacepipeError({
      code: 'bad-sweep',
      file: 'command line',
      message: `--sweep ${text}: values must be finite numbers (.inf and .nan are not params)`,
    });
  return [path, { values }];
}

type Where = (path: string[], opts?: { key?: boolean }) => Partial<Diagnostic>;

/**
 * Read a `sweep:` mapping (from a pipeline or a sweep file) into a SweepSpec; problems become diagnostics. Its
 * shape is checked by ajv (src/load/sweep-schema.ts), each param's domain and the halving settings here.
 */
export function readSweepSection(raw: unknown, where: Where): SweepSpec {
  const diags: Diagnostic[] = [];
  const bad = (path: string[], message: string, hint?: string) =>
    diags.push({ code: 'bad-sweep', message, hint, keyPath: ['sweep', ...path].join('.'), ...where(path) });
  const spec: SweepSpec = { method: 'grid', seed: 0, params: {} };
  if (!isPlainObject(raw)) {
    bad([], 'sweep must be a mapping with params: {...}');
    throw new FacepipeError(diags);
  }
  const v = validator(sweepSchema);
  if (!v(raw))
    for (const issue of schemaIssues(v.errors, (p) => ['sweep', ...p].join('.'))) {
      diags.push({
        code: issue.code,
        message: issue.message,
        hint: issue.hint,
        keyPath: ['sweep', ...issue.path].join('.'),
        ...where(issue.path, { key: issue.atKey }),
      });
    }
  if (raw.method === 'grid' || raw.method === 'random') spec.method = raw.method;
  if (Number.isInteger(raw.samples) && (raw.samples as number) > 0) spec.samples = raw.samples as number;
  if (Number.isInteger(raw.seed)) spec.seed = raw.seed as number;
  if (raw.method === 'halving' || raw.method === 'hyperband') {
    spec.method = spec.samples || raw.method === 'hyperband' ? 'random' : 'grid';
    spec.halving = readHalving(raw, where, bad);
    if (raw.method === 'hyperband') spec.halving.hyperband = true;
    if (raw.method === 'hyperband' && raw.samples !== undefined)
      bad(['samples'], 'hyperband draws its own number of points per bracket', 'remove samples');
  } else
    for (const k of HALVING_KEYS)
      if (raw[k] !== undefined)
        bad([k], `sweep.${k} is a setting of successive halving`, "add 'method: halving', or remove it");
  if (isPlainObject(raw.params) && !Object.keys(raw.params).length)
    bad(
      ['params'],
      'sweep.params must map stage.param paths to values',
      'e.g. params: { triarchy.loss.margin: [0.1, 0.3] }',
    );
  else if (isPlainObject(raw.params)) readParams(raw.params, spec, where, bad);
  if (diags.length) throw new FacepipeError(diags);
  return spec;
}

/** The halving settings of a sweep section whose shape ajv has checked; eta defaults to 3. */
function readHalving(
  raw: Record<string, unknown>,
  where: Where,
  bad: (path: string[], message: string, hint?: string) => void,
): HalvingSpec {
  const int = (k: string) => (Number.isInteger(raw[k]) && (raw[k] as number) >= 1 ? (raw[k] as number) : 1);
  const h: HalvingSpec = {
    eta: typeof raw.eta === 'number' && raw.eta > 1 ? raw.eta : 3,
    minEpochs: int('min_epochs'),
    maxEpochs: int('max_epochs'),
    where: Object.fromEntries(HALVING_KEYS.map((k) => [k, withKeyPath(`sweep.${k}`, where([k]))])),
  };
  if (typeof raw.metric === 'string') h.metric = raw.metric;
  if (raw.mode === 'max' || raw.mode === 'min') h.mode = raw.mode;
  if (h.minEpochs > h.maxEpochs)
    bad(
      ['min_epochs'],
      `sweep.min_epochs (${h.minEpochs}) is above max_epochs (${h.maxEpochs})`,
      'the first rung trains min_epochs, the last max_epochs',
    );
  return h;
}

/** Each `stage.param: domain` of a sweep section. */
function readParams(
  params: Record<string, unknown>,
  spec: SweepSpec,
  where: Where,
  bad: (path: string[], message: string, hint?: string) => void,
): void {
  for (const [p, v] of Object.entries(params)) {
    spec.where = { ...spec.where, [p]: withKeyPath(`sweep.params.${p}`, where(['params', p])) };
    if (p.split('.').length < 2 || p.split('.').some((seg) => !seg)) {
      bad(['params', p], `sweep param '${p}' must be <stage>.<param>`);
      continue;
    }
    const proto = p.split('.').find((seg) => PROTOTYPE_KEYS.has(seg));
    if (proto !== undefined) {
      bad(['params', p], `'${proto}' is not allowed in a sweep param (it names an object's prototype)`);
      continue;
    }
    if (Array.isArray(v)) {
      const infinite = nonFinitePaths(v);
      if (infinite.length)
        bad(['params', p, ...infinite[0].map(String)], `sweep param '${p}': values must be finite numbers`);
      else if (v.length) spec.params[p] = { values: v };
      else bad(['params', p], `sweep param '${p}' has no values`);
      continue;
    }
    if (isPlainObject(v)) {
      const [k] = Object.keys(v);
      const arr = k ? v[k] : undefined;
      const want = k === 'range' ? 3 : 2;
      if (
        Object.keys(v).length === 1 &&
        (k === 'range' || k === 'uniform' || k === 'loguniform') &&
        Array.isArray(arr) &&
        arr.length === want &&
        arr.every((x) => typeof x === 'number' && Number.isFinite(x))
      ) {
        spec.params[p] = { [k]: arr } as Domain;
        continue;
      }
    }
    bad(
      ['params', p],
      `sweep param '${p}' must be a list of values or one of { range: [a, b, step] }, { uniform: [a, b] }, { loguniform: [a, b] }`,
    );
  }
}

/** Turn a point into per-stage override values (the shape a config file has). */
export function pointToOverrides(pt: Point): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  const child = (o: Record<string, unknown>, k: string) => {
    if (!Object.prototype.hasOwnProperty.call(o, k)) defineOwn(o, k, {});
    return o[k] as Record<string, unknown>;
  };
  for (const [path, v] of Object.entries(pt)) {
    const [stage, ...rest] = path.split('.');
    let o = child(out, stage);
    for (const seg of rest.slice(0, -1)) o = child(o, seg);
    defineOwn(o, rest[rest.length - 1], v);
  }
  return out;
}
