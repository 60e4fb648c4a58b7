// The inference graph of an EmbeddingNet (EfficientNet backbone + Dense embedding) as ONNX, written from the
// net's own variables. Layout: NHWC input (as TF.js gets it), one Transpose to NCHW, then Conv / Gemm in ONNX's
// native layout. Inference BatchNorm is folded into the preceding convolution (float64 arithmetic); TF "same"
// padding becomes explicit pads for the fixed input size (TF puts the odd pixel at the end, as here).
import { blockSpecs, BACKBONE_BN_EPSILON, roundFilters } from '../../model/efficientnet.js';
import type { BackboneConfig } from '../../types.js';
import { ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from './info.js';
import { OnnxGraphBuilder } from './proto.js';

/** A variable's values as read from TF.js: shape and row-major float32 data. */
export interface WeightValue {
  shape: number[];
  data: Float32Array;
}
export type Weights = Map<string, WeightValue>;

/** TF "same" padding of one spatial axis: [before, after], and the output size. */
export function samePadding(
  size: number,
  kernel: number,
  stride: number,
): { before: number; after: number; out: number } {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  const before = Math.floor(total / 2);
  return { before, after: total - before, out };
}

class GraphWriter {
  readonly g = new OnnxGraphBuilder();
  constructor(private readonly weights: Weights) {}

  get(name: string, rank?: number): WeightValue {
    const w = this.weights.get(name);
    if (!w) throw new Error(`ONNX export: parameter '${name}' missing`);
    if (rank !== undefined && w.shape.length !== rank)
      throw new Error(`ONNX export: parameter '${name}' has shape [${w.shape.join(', ')}], expected rank ${rank}`);
    return w;
  }

  /** Per-output-channel scale and shift of inference BN: y = x * scale + shift. */
  bnFold(prefix: string): { scale: Float64Array; shift: Float64Array } {
    const [gamma, beta, mean, variance] = ['gamma', 'beta', 'moving_mean', 'moving_variance'].map(
      (n) => this.get(`${prefix}/${n}`, 1).data,
    );
    const scale = new Float64Array(gamma.length);
    const shift = new Float64Array(gamma.length);
    for (let c = 0; c < gamma.length; c++) {
      scale[c] = gamma[c] / Math.sqrt(variance[c] + BACKBONE_BN_EPSILON);
      shift[c] = beta[c] - mean[c] * scale[c];
    }
    return { scale, shift };
  }

  /**
   * Conv (+ folded BN, or a plain bias) with an ONNX weight [out, in/group, k, k] built by `at(o, i, y, x)`.
   * `pads` are explicit [top, left, bottom, right].
   */
  conv(
    x: string,
    name: string,
    dims: [number, number, number, number],
    at: (o: number, i: number, y: number, xx: number) => number,
    opts: { stride?: number; group?: number; pads?: number[]; bn?: string; bias?: Float32Array },
  ): string {
    const [cout, cin, kh, kw] = dims;
    const fold = opts.bn ? this.bnFold(opts.bn) : undefined;
    const w = new Float32Array(cout * cin * kh * kw);
    let k = 0;
    for (let o = 0; o < cout; o++) {
      const s = fold ? fold.scale[o] : 1;
      for (let i = 0; i < cin; i++)
        for (let y = 0; y < kh; y++) for (let xx = 0; xx < kw; xx++) w[k++] = at(o, i, y, xx) * s;
    }
    const bias = fold ? Float32Array.from(fold.shift) : opts.bias;
    const inputs = [x, this.g.constant(`${name}/weight`, dims, w)];
    if (bias) inputs.push(this.g.constant(`${name}/bias`, [cout], bias));
    return this.g.node('Conv', inputs, name, {
      kernel_shape: [kh, kw],
      strides: [opts.stride ?? 1, opts.stride ?? 1],
      pads: opts.pads ?? [0, 0, 0, 0],
      group: opts.group ?? 1,
      dilations: [1, 1],
    });
  }

  /** 1x1 convolution from a facepipe [in, out] kernel. */
  pointwise(x: string, prefix: string, opts: { bn?: string; bias?: boolean }): string {
    const { shape, data } = this.get(`${prefix}/kernel`, 2);
    const [cin, cout] = shape;
    const bias = opts.bias ? this.get(`${prefix}/bias`, 1).data : undefined;
    return this.conv(x, prefix, [cout, cin, 1, 1], (o, i) => data[i * cout + o], { bn: opts.bn, bias });
  }

  swish(x: string, name: string): string {
    return this.g.node('Mul', [x, this.g.node('Sigmoid', [x], `${name}/sigmoid`)], `${name}/swish`);
  }
}

/** Serialised ONNX model of backbone + embedding for input [N, inputSize, inputSize, 3]. */
export function embeddingGraph(
  config: BackboneConfig,
  weights: Weights,
  opts: { metadata: Record<string, string>; docString: string; producerVersion: string },
): Uint8Array {
  const wr = new GraphWriter(weights);
  const { g } = wr;
  let size = config.inputSize;
  let h = g.node('Transpose', [g.input(ONNX_INPUT_NAME)], 'nchw', { perm: [0, 3, 1, 2] });

  // Stem: 3x3 stride 2, TF kernel [kh, kw, in, out].
  const stem = wr.get('backbone/stem/conv/kernel', 4);
  const stemOut = roundFilters(32, config.width);
  if (stem.shape[3] !== stemOut) throw new Error(`ONNX export: stem has ${stem.shape[3]} filters, config ${stemOut}`);
  const sp = samePadding(size, 3, 2);
  h = wr.conv(
    h,
    'backbone/stem/conv',
    [stemOut, 3, 3, 3],
    (o, i, y, x) => stem.data[((y * 3 + x) * 3 + i) * stemOut + o],
    { stride: 2, pads: [sp.before, sp.before, sp.after, sp.after], bn: 'backbone/stem/bn' },
  );
  h = wr.swish(h, 'backbone/stem');
  size = sp.out;

  for (const spec of blockSpecs(config)) {
    const p = `backbone/blocks/${spec.index}`;
    const mid = spec.inFilters * spec.expand;
    const input = h;
    if (spec.expand !== 1) h = wr.swish(wr.pointwise(h, `${p}/expand`, { bn: `${p}/expand_bn` }), `${p}/expand`);
    // Depthwise: TF kernel [k, k, C, 1] -> ONNX [C, 1, k, k], group C.
    const dw = wr.get(`${p}/depthwise/kernel`, 4);
    const k = spec.kernel;
    const pad = samePadding(size, k, spec.stride);
    h = wr.conv(h, `${p}/depthwise`, [mid, 1, k, k], (o, _i, y, x) => dw.data[(y * k + x) * mid + o], {
      stride: spec.stride,
      group: mid,
      pads: [pad.before, pad.before, pad.after, pad.after],
      bn: `${p}/depthwise_bn`,
    });
    h = wr.swish(h, `${p}/depthwise`);
    size = pad.out;
    // Squeeze-excitation on [N, mid, 1, 1].
    let s = g.node('GlobalAveragePool', [h], `${p}/se_pool`);
    s = wr.swish(wr.pointwise(s, `${p}/se_reduce`, { bias: true }), `${p}/se_reduce`);
    s = g.node('Sigmoid', [wr.pointwise(s, `${p}/se_expand`, { bias: true })], `${p}/se_gate`);
    h = g.node('Mul', [h, s], `${p}/se_scale`);
    h = wr.pointwise(h, `${p}/project`, { bn: `${p}/project_bn` });
    if (spec.stride === 1 && spec.inFilters === spec.outFilters) h = g.node('Add', [h, input], `${p}/residual`);
  }

  h = wr.swish(wr.pointwise(h, 'backbone/head/conv', { bn: 'backbone/head/bn' }), 'backbone/head');
  h = g.node('Flatten', [g.node('GlobalAveragePool', [h], 'backbone/pool')], 'backbone/features', { axis: 1 });
  const kernel = wr.get('embedding/kernel', 2);
  const dim = kernel.shape[1];
  g.node(
    'Gemm',
    [
      h,
      g.constant('embedding/kernel', kernel.shape, kernel.data),
      g.constant('embedding/bias', [dim], wr.get('embedding/bias', 1).data),
    ],
    ONNX_OUTPUT_NAME,
  );
  return g.encode({
    graphName: 'facepipe_embedding',
    input: { name: ONNX_INPUT_NAME, dims: ['N', config.inputSize, config.inputSize, 3] },
    output: { name: ONNX_OUTPUT_NAME, dims: ['N', dim] },
    ...opts,
  });
}
