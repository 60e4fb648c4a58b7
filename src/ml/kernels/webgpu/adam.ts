// Multi-tensor Adam for WebGPU: one dispatch updates the parameters and both moments of several variables in
// place (4 storage bindings each, as many variables as the adapter's storage-buffer limit allows, at most 4).
// The op-by-op update costs 13 dispatches per variable (2,800 per B0 step). In place is safe only for buffers
// nothing else shares: a tensor with another reference is left to the op path.
import * as tf from '@tensorflow/tfjs-core';
import type { AdamHyper } from '../fused-adam.js';
import { checkInternals, dispatch, FLAT_GROUP, packUniforms, WORKGROUP, type WebGpuInternals } from './dispatch.js';

const MAX_PER_DISPATCH = 4;

function shader(k: number): string {
  const ends = Array.from({ length: k }, (_, j) => `e${j}: u32`).join(', ');
  const bindings = Array.from({ length: k }, (_, j) =>
    ['p', 'm', 'v', 'g']
      .map(
        (n, q) =>
          `@group(0) @binding(${4 * j + q}) var<storage, ${n === 'g' ? 'read' : 'read_write'}> ${n}${j}: array<f32>;`,
      )
      .join('\n'),
  ).join('\n');
  const branches = Array.from(
    { length: k },
    (_, j) => `if (i < u.e${j}) {
    let q = i - ${j === 0 ? '0u' : `u.e${j - 1}`};
    let g = g${j}[q];
    let m = m${j}[q] * u.b1 + g * u.c1;
    let v = v${j}[q] * u.b2 + (g * g) * u.c2;
    m${j}[q] = m;
    v${j}[q] = v;
    p${j}[q] = p${j}[q] - (m / (sqrt(v) / u.sqrtBc2 + u.eps)) * u.stepSize;
    return;
  }`,
  ).join('\n  ');
  return `struct U { b1: f32, c1: f32, b2: f32, c2: f32, eps: f32, sqrtBc2: f32, stepSize: f32, ${ends} }
${bindings}
@group(0) @binding(${4 * k}) var<uniform> u: U;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  ${FLAT_GROUP}
  let i = group * ${WORKGROUP}u + lid;
  ${branches}
}`;
}

const shaders = new Map<number, string>();

function exclusive(b: WebGpuInternals, t: tf.Tensor): boolean {
  return t.dtype === 'float32' && b.tensorMap.get(t.dataId).refCount === 1;
}

export function adamWebGpu(
  vars: tf.Tensor[],
  grads: Array<tf.Tensor | undefined>,
  m: tf.Tensor[],
  v: tf.Tensor[],
  h: AdamHyper,
): boolean[] {
  const b = checkInternals(tf.backend());
  const done = vars.map(() => false);
  const todo = vars
    .map((_, i) => i)
    .filter((i) => {
      const g = grads[i];
      return g && g.dtype === 'float32' && exclusive(b, vars[i]) && exclusive(b, m[i]) && exclusive(b, v[i]);
    });
  const per = Math.max(1, Math.min(MAX_PER_DISPATCH, Math.floor(b.device.limits.maxStorageBuffersPerShaderStage / 4)));
  for (let s = 0; s < todo.length; s += per) {
    const group = todo.slice(s, s + per);
    if (!shaders.has(group.length)) shaders.set(group.length, shader(group.length));
    const ends: number[] = [];
    for (const i of group) ends.push((ends.at(-1) ?? 0) + vars[i].size);
    const u = packUniforms('fffffffu', [
      h.beta1,
      1 - h.beta1,
      h.beta2,
      1 - h.beta2,
      h.epsilon,
      h.sqrtBc2,
      h.stepSize,
      ...ends,
    ]);
    const tensors = group.flatMap((i) => [vars[i], m[i], v[i], grads[i]!]);
    dispatch(b, shaders.get(group.length)!, tensors, Math.ceil(ends.at(-1)! / WORKGROUP), u);
    for (const i of group) {
      // Values cached on the CPU by an earlier read are stale now.
      for (const t of [vars[i], m[i], v[i]]) b.tensorMap.get(t.dataId).values = null;
      done[i] = true;
    }
  }
  return done;
}
