// EfficientNet backbone (B0 block table, lukemelas EfficientNet-PyTorch 0.5.1 semantics) over raw variables.
import * as tf from '@tensorflow/tfjs-core';
import type { BackboneConfig } from '../types.js';
import {
  batchNorm,
  createBatchNorm,
  pointwise,
  seGate,
  spatialMean,
  swish,
  type BatchNormParams,
  type ParamStore,
  type SeedStream,
} from './ops.js';

/** B0 stages: repeats, kernel, stride, expand ratio, input filters, output filters (SE ratio 0.25 everywhere). */
export const B0_STAGES: ReadonlyArray<readonly [number, number, number, number, number, number]> = [
  [1, 3, 1, 1, 32, 16],
  [2, 3, 2, 6, 16, 24],
  [2, 5, 2, 6, 24, 40],
  [3, 3, 2, 6, 40, 80],
  [3, 5, 1, 6, 80, 112],
  [4, 5, 2, 6, 112, 192],
  [1, 3, 1, 6, 192, 320],
];
export const SE_RATIO = 0.25;
export const BACKBONE_BN_EPSILON = 1e-3;

/** EfficientNet's round_filters: scale by width, round to a multiple of 8, never drop more than 10%. */
export function roundFilters(filters: number, width: number, divisor = 8): number {
  if (!width || width === 1) return filters;
  const scaled = filters * width;
  let rounded = Math.max(divisor, Math.floor(Math.trunc(scaled + divisor / 2) / divisor) * divisor);
  if (rounded < 0.9 * scaled) rounded += divisor;
  return rounded;
}

/** EfficientNet's round_repeats. */
export function roundRepeats(repeats: number, depth: number): number {
  if (!depth || depth === 1) return repeats;
  return Math.ceil(depth * repeats);
}

export interface BlockSpec {
  index: number;
  inFilters: number;
  outFilters: number;
  expand: number;
  kernel: number;
  stride: number;
  squeeze: number;
  dropRate: number;
}

/** The block list a config expands to (index, widths, drop-connect rate). */
export function blockSpecs(cfg: BackboneConfig): BlockSpec[] {
  const specs: Omit<BlockSpec, 'dropRate' | 'index'>[] = [];
  for (const [repeats, kernel, stride, expand, inF, outF] of B0_STAGES) {
    const inFilters = roundFilters(inF, cfg.width);
    const outFilters = roundFilters(outF, cfg.width);
    const n = roundRepeats(repeats, cfg.depth);
    for (let r = 0; r < n; r++) {
      const input = r === 0 ? inFilters : outFilters;
      specs.push({
        inFilters: input,
        outFilters,
        expand,
        kernel,
        stride: r === 0 ? stride : 1,
        squeeze: Math.max(1, Math.trunc(input * SE_RATIO)),
      });
    }
  }
  return specs.map((s, index) => ({ ...s, index, dropRate: (cfg.dropConnect * index) / specs.length }));
}

export function validateBackboneConfig(cfg: BackboneConfig, where = 'backbone'): void {
  const bad = (field: string, why: string) => {
    throw new Error(`${where}.${field}: ${why}`);
  };
  if (!(cfg.width > 0)) bad('width', `must be > 0, got ${cfg.width}`);
  if (!(cfg.depth > 0)) bad('depth', `must be > 0, got ${cfg.depth}`);
  if (!(Number.isInteger(cfg.inputSize) && cfg.inputSize >= 32))
    bad('inputSize', `must be an integer >= 32, got ${cfg.inputSize}`);
  if (!(cfg.bnMomentum >= 0 && cfg.bnMomentum < 1))
    bad('bnMomentum', `must be in [0, 1) (TF convention, e.g. 0.99), got ${cfg.bnMomentum}`);
  if (!(cfg.dropConnect >= 0 && cfg.dropConnect < 1)) bad('dropConnect', `must be in [0, 1), got ${cfg.dropConnect}`);
}

interface Block {
  spec: BlockSpec;
  expand?: { kernel: tf.Variable; bn: BatchNormParams };
  dw: { kernel: tf.Variable; bn: BatchNormParams };
  seReduce: { kernel: tf.Variable; bias: tf.Variable };
  seExpand: { kernel: tf.Variable; bias: tf.Variable };
  project: { kernel: tf.Variable; bn: BatchNormParams };
}

/** Conv init as PyTorch's default (kaiming_uniform with a=sqrt(5)): U(+-1/sqrt(fan_in)). */
const bound = (fanIn: number) => 1 / Math.sqrt(fanIn);

export class EfficientNetBackbone {
  readonly blocks: Block[] = [];
  readonly stemFilters: number;
  /** Width of the pooled feature vector (1280 for B0). */
  readonly outChannels: number;
  private readonly stem: { kernel: tf.Variable; bn: BatchNormParams };
  private readonly head: { kernel: tf.Variable; bn: BatchNormParams };

  /** Parameter names start with `${prefix}/`. */
  constructor(
    readonly config: BackboneConfig,
    store: ParamStore,
    readonly prefix = 'backbone',
  ) {
    validateBackboneConfig(config);
    const mom = config.bnMomentum;
    const eps = BACKBONE_BN_EPSILON;
    const p = prefix;
    this.stemFilters = roundFilters(32, config.width);
    this.outChannels = roundFilters(1280, config.width);
    this.stem = {
      kernel: store.uniform(`${p}/stem/conv/kernel`, [3, 3, 3, this.stemFilters], bound(27)),
      bn: createBatchNorm(store, `${p}/stem/bn`, this.stemFilters, mom, eps),
    };
    for (const spec of blockSpecs(config)) {
      const b = `${p}/blocks/${spec.index}`;
      const mid = spec.inFilters * spec.expand;
      this.blocks.push({
        spec,
        expand:
          spec.expand === 1
            ? undefined
            : {
                kernel: store.uniform(`${b}/expand/kernel`, [spec.inFilters, mid], bound(spec.inFilters)),
                bn: createBatchNorm(store, `${b}/expand_bn`, mid, mom, eps),
              },
        dw: {
          kernel: store.uniform(
            `${b}/depthwise/kernel`,
            [spec.kernel, spec.kernel, mid, 1],
            bound(spec.kernel * spec.kernel),
          ),
          bn: createBatchNorm(store, `${b}/depthwise_bn`, mid, mom, eps),
        },
        seReduce: {
          kernel: store.uniform(`${b}/se_reduce/kernel`, [mid, spec.squeeze], bound(mid)),
          bias: store.uniform(`${b}/se_reduce/bias`, [spec.squeeze], bound(mid)),
        },
        seExpand: {
          kernel: store.uniform(`${b}/se_expand/kernel`, [spec.squeeze, mid], bound(spec.squeeze)),
          bias: store.uniform(`${b}/se_expand/bias`, [mid], bound(spec.squeeze)),
        },
        project: {
          kernel: store.uniform(`${b}/project/kernel`, [mid, spec.outFilters], bound(mid)),
          bn: createBatchNorm(store, `${b}/project_bn`, spec.outFilters, mom, eps),
        },
      });
    }
    const last = this.blocks[this.blocks.length - 1].spec.outFilters;
    this.head = {
      kernel: store.uniform(`${p}/head/conv/kernel`, [last, this.outChannels], bound(last)),
      bn: createBatchNorm(store, `${p}/head/bn`, this.outChannels, mom, eps),
    };
  }

  /**
   * Bytes of the largest single tensor one image produces in training (an activation or its gradient): what
   * WebGPU's per-binding limit caps (src/ml/backend/binding-limit.ts). 'same' padding: side ceil(side / stride).
   */
  largestTensorBytesPerImage(): number {
    const s = this.config.inputSize;
    let r = Math.ceil(s / 2);
    let max = Math.max(s * s * 3, r * r * this.stemFilters);
    for (const { spec } of this.blocks) {
      const mid = spec.inFilters * spec.expand;
      max = Math.max(max, r * r * mid);
      r = Math.ceil(r / spec.stride);
      max = Math.max(max, r * r * mid, r * r * spec.outFilters);
    }
    return 4 * Math.max(max, r * r * this.outChannels);
  }

  /** [N, H, W, 3] in [0, 1] -> pooled features [N, outChannels]. */
  apply(x: tf.Tensor4D, training: boolean, seeds?: SeedStream): tf.Tensor2D {
    if (x.rank !== 4 || x.shape[3] !== 3) {
      throw new Error(`EfficientNet input must be [N, H, W, 3], got [${x.shape.join(', ')}]`);
    }
    let h = tf.conv2d(x, this.stem.kernel as tf.Tensor4D, 2, 'same');
    h = swish(batchNorm(h, this.stem.bn, training)) as tf.Tensor4D;
    for (const block of this.blocks) h = this.applyBlock(block, h, training, seeds);
    h = swish(batchNorm(pointwise(h, this.head.kernel as tf.Tensor2D), this.head.bn, training)) as tf.Tensor4D;
    return spatialMean(h);
  }

  private applyBlock(block: Block, input: tf.Tensor4D, training: boolean, seeds?: SeedStream): tf.Tensor4D {
    const { spec } = block;
    let h = input;
    if (block.expand)
      h = swish(batchNorm(pointwise(h, block.expand.kernel as tf.Tensor2D), block.expand.bn, training)) as tf.Tensor4D;
    h = tf.depthwiseConv2d(h, block.dw.kernel as tf.Tensor4D, spec.stride, 'same');
    h = swish(batchNorm(h, block.dw.bn, training)) as tf.Tensor4D;
    // Squeeze-excitation.
    const [n] = h.shape;
    let s = spatialMean(h);
    s = swish(tf.add(tf.matMul(s, block.seReduce.kernel as tf.Tensor2D), block.seReduce.bias)) as tf.Tensor2D;
    s = tf.sigmoid(tf.add(tf.matMul(s, block.seExpand.kernel as tf.Tensor2D), block.seExpand.bias)) as tf.Tensor2D;
    h = seGate(h, s);
    h = batchNorm(pointwise(h, block.project.kernel as tf.Tensor2D), block.project.bn, training) as tf.Tensor4D;
    if (spec.stride === 1 && spec.inFilters === spec.outFilters) {
      if (training && spec.dropRate > 0) {
        // Drop-connect per sample: x / keep * floor(keep + U[0, 1)).
        const keep = 1 - spec.dropRate;
        const u = tf.randomUniform([n, 1, 1, 1], 0, 1, 'float32', seeds?.next());
        h = tf.mul(h, tf.div(tf.floor(tf.add(u, keep)), keep));
      }
      h = tf.add(h, input);
    }
    return h;
  }
}
