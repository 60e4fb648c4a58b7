// Swish in one dispatch each way (stock: sigmoid + multiply forward, five element-wise ops backward). The
// forward saves no sigmoid: the gradient recomputes it, which costs arithmetic but no memory pass.
import type { KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { KernelArgs } from '../wasm-util.js';
import { checkInternals, dispatch, FLAT_GROUP, makeOutput, packUniforms, WORKGROUP } from './dispatch.js';

const elementwise = (inputs: string[], body: string) => `struct U { n: u32 }
${inputs.map((n, i) => `@group(0) @binding(${i}) var<storage, read> ${n}: array<f32>;`).join('\n')}
@group(0) @binding(${inputs.length}) var<storage, read_write> out: array<f32>;
@group(0) @binding(${inputs.length + 1}) var<uniform> u: U;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  ${FLAT_GROUP}
  let i = group * ${WORKGROUP}u + lid;
  if (i >= u.n) { return; }
  let v = x[i];
  let s = 1.0 / (1.0 + exp(-v));
  ${body}
}`;

const SWISH = elementwise(['x'], 'out[i] = v * s;');
const SWISH_GRAD = elementwise(['dy', 'x'], 'out[i] = dy[i] * s * (1.0 + v * (1.0 - s));');

function run(backend: unknown, code: string, inputs: TensorInfo[]): TensorInfo {
  const b = checkInternals(backend);
  const shape = inputs[inputs.length - 1].shape;
  const n = shape.reduce((p, q) => p * q, 1);
  const out = makeOutput(b, shape);
  dispatch(b, code, [...inputs, out], Math.ceil(n / WORKGROUP), packUniforms('u', [n]));
  return out;
}

export const swishWebGpu = ((args: KernelArgs) => run(args.backend, SWISH, [args.inputs.x])) as unknown as KernelFunc;

export const swishGradWebGpu = ((args: KernelArgs) =>
  run(args.backend, SWISH_GRAD, [args.inputs.dy, args.inputs.x])) as unknown as KernelFunc;
