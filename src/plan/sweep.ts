// Sweeps: expand a grid (every combination) or a seeded random sample into experiment points.
// A point maps dotted param paths (stage first) to values; its name is short and stable: a hash of the point.
import seedrandom from 'seedrandom';
import { FacepipeError, type Diagnostic } from '../core/errors.js';
import { canonicalJson, sha256 } from '../core/hash.js';
import { isPlainObject } from '../core/objects.js';

export type Domain =
  | { values: unknown[] }
  | { uniform: [number, number] }
  | { loguniform: [number, number] }
  | { range: [number, number, number] };

export interface SweepSpec {
  method: 'grid' | 'random';
  samples?: number;
  seed: number;
  params: Record<string, Domain>;
}

export type Point = Record<string, unknown>;

const round = (x: number) => Number(x.toPrecision(6));

function gridValues(path: string, d: Domain): unknown[] {
  if ('values' in d) return d.values;
  if ('range' in d) {
    const [a, b, step] = d.range;
    if (!(step > 0)) throw new FacepipeError({ code: 'bad-sweep', message: `sweep ${path}: range step must be > 0` });
    const out: number[] = [];
    for (let x = a; x <= b + step * 1e-9; x += step) out.push(round(x));
    return out;
  }
  throw new FacepipeError({
    code: 'bad-sweep',
    message: `sweep ${path}: ${'uniform' in d ? 'uniform' : 'loguniform'} ranges need method: random (a grid needs a list of values)`,
    hint: 'add `method: random` and `samples: N`, or give a list',
  });
}

export function expandSweep(s: SweepSpec): Point[] {
  const paths = Object.keys(s.params);
  if (s.method === 'grid') {
    let points: Point[] = [{}];
    for (const p of paths) {
      const vals = gridValues(p, s.params[p]);
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
  const rng = seedrandom(String(s.seed));
  const points: Point[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < n * 20 && points.length < n; i++) {
    const pt: Point = {};
    for (const p of paths) {
      const d = s.params[p];
      if ('values' in d) pt[p] = d.values[Math.floor(rng() * d.values.length)];
      else if ('range' in d) {
        const v = gridValues(p, d);
        pt[p] = v[Math.floor(rng() * v.length)];
      } else if ('uniform' in d) pt[p] = round(d.uniform[0] + rng() * (d.uniform[1] - d.uniform[0]));
      else {
        const [a, b] = d.loguniform;
        if (!(a > 0 && b > 0))
          throw new FacepipeError({ code: 'bad-sweep', message: `sweep ${p}: loguniform bounds must be > 0` });
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
  return [path, { values: m[2].split(',').map((v) => parseValue(v.trim())) }];
}

/** Read a `sweep:` mapping (from a pipeline or a sweep file) into a SweepSpec; problems become diagnostics. */
export function readSweepSection(raw: unknown, where: (path: string[]) => Partial<Diagnostic>): SweepSpec {
  const diags: Diagnostic[] = [];
  const bad = (path: string[], message: string, hint?: string) =>
    diags.push({ code: 'bad-sweep', message, hint, keyPath: ['sweep', ...path].join('.'), ...where(path) });
  const spec: SweepSpec = { method: 'grid', seed: 0, params: {} };
  if (!isPlainObject(raw)) {
    bad([], 'sweep must be a mapping with params: {...}');
    throw new FacepipeError(diags);
  }
  for (const k of Object.keys(raw))
    if (!['method', 'samples', 'seed', 'params'].includes(k))
      bad([k], `unknown key '${k}' in sweep`, 'known keys: method, samples, seed, params');
  if (raw.method !== undefined) {
    if (raw.method === 'grid' || raw.method === 'random') spec.method = raw.method;
    else bad(['method'], `sweep.method must be "grid" or "random"`);
  }
  if (raw.samples !== undefined) {
    if (Number.isInteger(raw.samples) && (raw.samples as number) > 0) spec.samples = raw.samples as number;
    else bad(['samples'], 'sweep.samples must be a positive integer');
  }
  if (raw.seed !== undefined) {
    if (Number.isInteger(raw.seed)) spec.seed = raw.seed as number;
    else bad(['seed'], 'sweep.seed must be an integer');
  }
  if (!isPlainObject(raw.params) || !Object.keys(raw.params).length)
    bad(
      ['params'],
      'sweep.params must map stage.param paths to values',
      'e.g. params: { triarchy.loss.margin: [0.1, 0.3] }',
    );
  else {
    for (const [p, v] of Object.entries(raw.params)) {
      if (p.split('.').length < 2) {
        bad(['params', p], `sweep param '${p}' must be <stage>.<param>`);
        continue;
      }
      if (Array.isArray(v)) {
        if (v.length) spec.params[p] = { values: v };
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
          arr.every((x) => typeof x === 'number')
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
  if (diags.length) throw new FacepipeError(diags);
  return spec;
}

/** Turn a point into per-stage override values (the shape a config file has). */
export function pointToOverrides(pt: Point): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [path, v] of Object.entries(pt)) {
    const [stage, ...rest] = path.split('.');
    let o = (out[stage] ??= {});
    for (const seg of rest.slice(0, -1)) o = (o[seg] ??= {}) as Record<string, unknown>;
    o[rest[rest.length - 1]] = v;
  }
  return out;
}
