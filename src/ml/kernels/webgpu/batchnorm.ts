// Training batch norm for WebGPU in 2-3 dispatches each way, instead of ~14 forward (statistics, normalisation,
// moving averages) and ~15 backward in stock kernels. Per-channel sums run over [M, C] (channels last) in
// workgroups of 32 channels x 8 row lanes, coalesced along channels; large M is split into row segments whose
// partial sums a second small dispatch folds (so a big activation still spreads over many workgroups).
// Variance: sums of (x - x[0, c]) and its square, shifted by the channel's first value against cancellation.
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { KernelArgs } from '../wasm-util.js';
import {
  checkInternals,
  dispatch,
  FLAT_GROUP,
  makeOutput,
  packUniforms,
  WORKGROUP,
  type WebGpuInternals,
} from './dispatch.js';

const TC = 32; // channels per workgroup
const TR = WORKGROUP / TC; // row lanes per workgroup

let segmentRows = 2048;

/** Rows per segment of the per-channel reductions (tests lower it to cover the two-dispatch path). */
export function setBatchNormSegmentRows(rows: number): void {
  if (!(Number.isInteger(rows) && rows >= 1)) throw new Error(`segment rows must be a positive integer (got ${rows})`);
  segmentRows = rows;
}

interface Layout {
  m: number;
  c: number;
  segRows: number;
  nCblk: number;
  segs: number;
}

function layout(shape: number[]): Layout {
  const c = shape[shape.length - 1];
  const m = shape.reduce((p, q) => p * q, 1) / c;
  const segs = Math.max(1, Math.ceil(m / segmentRows));
  return { m, c, segRows: Math.ceil(m / segs), nCblk: Math.ceil(c / TC), segs };
}

const UNIFORMS = `struct U { m: u32, c: u32, segRows: u32, nCblk: u32, segs: u32, eps: f32, momentum: f32, unbias: f32 }`;

function uniforms(l: Layout, eps = 0, momentum = 0): ArrayBuffer {
  const unbias = l.m > 1 ? l.m / (l.m - 1) : 1;
  return packUniforms('uuuuufff', [l.m, l.c, l.segRows, l.nCblk, l.segs, eps, momentum, unbias]);
}

const io = (names: string[], access: 'read' | 'read_write', from: number) =>
  names.map((n, i) => `@group(0) @binding(${from + i}) var<storage, ${access}> ${n}: array<f32>;`).join('\n');

/**
 * Per-channel sums s1, s2 over one row segment, reduced in workgroup memory; `term` sets a and b from row r's
 * element `i` of channel `ch` (s1 += a, s2 += b). `finish` runs on lane 0 with s1, s2, ch (and `seg`).
 */
function reductionShader(inputs: string[], outputs: string[], term: string, finish: string): string {
  return `${UNIFORMS}
${io(inputs, 'read', 0)}
${io(outputs, 'read_write', inputs.length)}
@group(0) @binding(${inputs.length + outputs.length}) var<uniform> u: U;
var<workgroup> sh1: array<f32, ${WORKGROUP}>;
var<workgroup> sh2: array<f32, ${WORKGROUP}>;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  ${FLAT_GROUP}
  let inRange = group < u.nCblk * u.segs;
  let seg = group / u.nCblk;
  let ch = (group % u.nCblk) * ${TC}u + lid % ${TC}u;
  let lane = lid / ${TC}u;
  var s1 = 0.0;
  var s2 = 0.0;
  if (inRange && ch < u.c) {
    let end = min((seg + 1u) * u.segRows, u.m);
    for (var r = seg * u.segRows + lane; r < end; r = r + ${TR}u) {
      let i = r * u.c + ch;
      var a = 0.0;
      var b = 0.0;
      ${term}
      s1 = s1 + a;
      s2 = s2 + b;
    }
  }
  sh1[lid] = s1;
  sh2[lid] = s2;
  workgroupBarrier();
  for (var stride = ${TR / 2}u; stride > 0u; stride = stride / 2u) {
    if (lane < stride) {
      sh1[lid] = sh1[lid] + sh1[lid + stride * ${TC}u];
      sh2[lid] = sh2[lid] + sh2[lid + stride * ${TC}u];
    }
    workgroupBarrier();
  }
  if (inRange && lane == 0u && ch < u.c) {
    let t1 = sh1[lid];
    let t2 = sh2[lid];
    ${finish}
  }
}`;
}

/** Folds [segs, 2, C] partial sums, one thread per channel, then runs `finish` with s1, s2, ch. */
function foldShader(inputs: string[], outputs: string[], finish: string): string {
  return `${UNIFORMS}
${io(['part', ...inputs], 'read', 0)}
${io(outputs, 'read_write', inputs.length + 1)}
@group(0) @binding(${inputs.length + outputs.length + 1}) var<uniform> u: U;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  ${FLAT_GROUP}
  let ch = group * ${WORKGROUP}u + lid;
  if (ch >= u.c) { return; }
  var t1 = 0.0;
  var t2 = 0.0;
  for (var s = 0u; s < u.segs; s = s + 1u) {
    t1 = t1 + part[(s * 2u) * u.c + ch];
    t2 = t2 + part[(s * 2u + 1u) * u.c + ch];
  }
  ${finish}
}`;
}

const PARTIAL = `part[(seg * 2u) * u.c + ch] = t1;
    part[(seg * 2u + 1u) * u.c + ch] = t2;`;

// Forward statistics: a = x - k, b = a^2 with k = x[0, ch].
const STATS_TERM = `a = x[i] - x[ch];
      b = a * a;`;
const STATS_FINISH = `let mf = f32(u.m);
    let d = t1 / mf;
    let v = max(t2 / mf - d * d, 0.0);
    mean[ch] = x[ch] + d;
    variance[ch] = v;
    mmOut[ch] = mm[ch] * u.momentum + (x[ch] + d) * (1.0 - u.momentum);
    mvOut[ch] = mv[ch] * u.momentum + v * u.unbias * (1.0 - u.momentum);`;
const STATS_OUT = ['mean', 'variance', 'mmOut', 'mvOut'];

const APPLY = `${UNIFORMS}
${io(['x', 'mean', 'variance', 'gamma', 'beta'], 'read', 0)}
${io(['y'], 'read_write', 5)}
@group(0) @binding(6) var<uniform> u: U;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  ${FLAT_GROUP}
  let i = group * ${WORKGROUP}u + lid;
  if (i >= u.m * u.c) { return; }
  let ch = i % u.c;
  y[i] = (x[i] - mean[ch]) * inverseSqrt(variance[ch] + u.eps) * gamma[ch] + beta[ch];
}`;

// Backward: s1 = sum(dy), s2 = sum(dy * (x - mean)); coef = [k, k2, k3]: dx = k dy + k2 (x - mean) + k3.
const GRAD_TERM = `a = dy[i];
      b = a * (x[i] - mean[ch]);`;
const GRAD_FINISH = `let inv = inverseSqrt(variance[ch] + u.eps);
    let k = gamma[ch] * inv;
    let mf = f32(u.m);
    coef[ch] = k;
    coef[u.c + ch] = -k * inv * inv * t2 / mf;
    coef[2u * u.c + ch] = -k * t1 / mf;
    dgamma[ch] = t2 * inv;
    dbeta[ch] = t1;`;
const GRAD_OUT = ['coef', 'dgamma', 'dbeta'];

const GRAD_APPLY = `${UNIFORMS}
${io(['dy', 'x', 'mean', 'coef'], 'read', 0)}
${io(['dx'], 'read_write', 4)}
@group(0) @binding(5) var<uniform> u: U;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  ${FLAT_GROUP}
  let i = group * ${WORKGROUP}u + lid;
  if (i >= u.m * u.c) { return; }
  let ch = i % u.c;
  dx[i] = coef[ch] * dy[i] + coef[u.c + ch] * (x[i] - mean[ch]) + coef[2u * u.c + ch];
}`;

const STATS: Reduction = {
  one: reductionShader(['x', 'mm', 'mv'], STATS_OUT, STATS_TERM, STATS_FINISH),
  part: reductionShader(['x'], ['part'], STATS_TERM, PARTIAL),
  fold: foldShader(['x', 'mm', 'mv'], STATS_OUT, STATS_FINISH),
};
const GRAD: Reduction = {
  one: reductionShader(['dy', 'x', 'mean', 'variance', 'gamma'], GRAD_OUT, GRAD_TERM, GRAD_FINISH),
  part: reductionShader(['dy', 'x', 'mean'], ['part'], GRAD_TERM, PARTIAL),
  fold: foldShader(['variance', 'gamma'], GRAD_OUT, GRAD_FINISH),
};

interface Reduction {
  one: string;
  part: string;
  fold: string;
}

/**
 * The per-channel reduction: one dispatch for a single segment, else partial sums per segment and a fold.
 * `inputs` feed the one-dispatch shader, `partInputs` the partial pass, `foldInputs` the fold (after `part`).
 */
function reduce(
  b: WebGpuInternals,
  l: Layout,
  u: ArrayBuffer,
  shaders: Reduction,
  tensors: { inputs: TensorInfo[]; partInputs: TensorInfo[]; foldInputs: TensorInfo[] },
  outputs: TensorInfo[],
): void {
  if (l.segs === 1) {
    dispatch(b, shaders.one, [...tensors.inputs, ...outputs], l.nCblk, u);
    return;
  }
  const partial = makeOutput(b, [l.segs, 2, l.c]);
  dispatch(b, shaders.part, [...tensors.partInputs, partial], l.nCblk * l.segs, u);
  dispatch(b, shaders.fold, [partial, ...tensors.foldInputs, ...outputs], Math.ceil(l.c / WORKGROUP), u);
  b.disposeData(partial.dataId);
}

function batchNormTrain(args: KernelArgs): TensorInfo[] {
  const b = checkInternals(args.backend);
  const { x, gamma, beta, movingMean, movingVariance } = args.inputs;
  const l = layout(x.shape);
  const u = uniforms(l, args.attrs!.epsilon as number, args.attrs!.momentum as number);
  const stats = [0, 1, 2, 3].map(() => makeOutput(b, [l.c]));
  const inputs = [x, movingMean, movingVariance];
  reduce(b, l, u, STATS, { inputs, partInputs: [x], foldInputs: inputs }, stats);
  const y = makeOutput(b, x.shape);
  dispatch(b, APPLY, [x, stats[0], stats[1], gamma, beta, y], Math.ceil((l.m * l.c) / WORKGROUP), u);
  return [y, ...stats];
}

function batchNormGrad(args: KernelArgs): TensorInfo[] {
  const b = checkInternals(args.backend);
  const { dy, x, mean, variance, gamma } = args.inputs;
  const l = layout(x.shape);
  const u = uniforms(l, args.attrs!.epsilon as number);
  const coef = makeOutput(b, [3, l.c]);
  const dgamma = makeOutput(b, [l.c]);
  const dbeta = makeOutput(b, [l.c]);
  const tensors = { inputs: [dy, x, mean, variance, gamma], partInputs: [dy, x, mean], foldInputs: [variance, gamma] };
  reduce(b, l, u, GRAD, tensors, [coef, dgamma, dbeta]);
  const dx = makeOutput(b, x.shape);
  dispatch(b, GRAD_APPLY, [dy, x, mean, coef, dx], Math.ceil((l.m * l.c) / WORKGROUP), u);
  b.disposeData(coef.dataId);
  return [dx, dgamma, dbeta];
}

export const batchNormTrainWebGpu = batchNormTrain as unknown as KernelFunc;
export const batchNormGradWebGpu = batchNormGrad as unknown as KernelFunc;
