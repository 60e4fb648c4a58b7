// The Triarchy net: EfficientNet backbone -> Dense(512) embedding (no BN) -> identity head Dense(C) + BN,
// plus trainable class centres [C, 512] for the center loss.
import * as tf from '@tensorflow/tfjs-core';
import type { BackboneConfig, TrainableNet } from '../types.js';
import { EfficientNetBackbone } from './efficientnet.js';
import { batchNorm, createBatchNorm, createDense, dense, type BatchNormParams, type DenseParams } from './ops.js';
import { NetBase } from './net-base.js';
import { imagesPerBinding } from '../backend/binding-limit.js';

export interface TriarchyOptions {
  backbone: BackboneConfig;
  embeddingDim: number;
  numClasses: number;
  seed: number;
}

export const ID_BN_EPSILON = 1e-5;
export const ID_BN_MOMENTUM = 0.9;

/** Backbone + embedding; the part that survives to inference. */
export class EmbeddingNet extends NetBase {
  readonly backbone: EfficientNetBackbone;
  readonly embeddingLayer: DenseParams;

  constructor(
    readonly backboneConfig: BackboneConfig,
    readonly embeddingDim: number,
    seed: number,
  ) {
    super(seed);
    if (!(Number.isInteger(embeddingDim) && embeddingDim > 0))
      throw new Error(`embeddingDim must be a positive integer, got ${embeddingDim}`);
    this.backbone = new EfficientNetBackbone(backboneConfig, this.store, 'backbone');
    this.embeddingLayer = createDense(this.store, 'embedding', this.backbone.outChannels, embeddingDim, true);
  }

  /** See EfficientNetBackbone.largestTensorBytesPerImage (the heads are far smaller). */
  largestTensorBytesPerImage(): number {
    return this.backbone.largestTensorBytesPerImage();
  }

  /** [N, H, W, 3] in [0, 1] -> [N, embeddingDim]. Inference mode (moving BN statistics, no drop-connect). */
  embed(x: tf.Tensor4D, batchSize = 64): tf.Tensor2D {
    const n = x.shape[0];
    batchSize = Math.min(batchSize, imagesPerBinding(this) ?? batchSize);
    if (n <= batchSize) return tf.tidy(() => dense(this.backbone.apply(x, false), this.embeddingLayer));
    const parts: tf.Tensor2D[] = [];
    for (let i = 0; i < n; i += batchSize) {
      parts.push(
        tf.tidy(() => {
          const xb = tf.slice(x, [i, 0, 0, 0], [Math.min(batchSize, n - i), -1, -1, -1]);
          return dense(this.backbone.apply(xb, false), this.embeddingLayer);
        }),
      );
    }
    const out = tf.concat(parts, 0);
    tf.dispose(parts);
    return out;
  }
}

export class TriarchyNet extends EmbeddingNet implements TrainableNet {
  readonly numClasses: number;
  readonly idHead: DenseParams;
  readonly idBn: BatchNormParams;
  /** Class centres [numClasses, embeddingDim], trained by the same optimiser. */
  readonly centers: tf.Variable;

  constructor(readonly options: TriarchyOptions) {
    super(options.backbone, options.embeddingDim, options.seed);
    const { numClasses, embeddingDim } = options;
    if (!(Number.isInteger(numClasses) && numClasses > 1))
      throw new Error(`numClasses must be an integer > 1, got ${numClasses}`);
    this.numClasses = numClasses;
    this.idHead = createDense(this.store, 'identity/dense', embeddingDim, numClasses, true);
    this.idBn = createBatchNorm(this.store, 'identity/bn', numClasses, ID_BN_MOMENTUM, ID_BN_EPSILON);
    // As nn.Linear(512, C, bias=False).weight: U(+-1/sqrt(512)).
    this.centers = this.store.uniform('centers', [numClasses, embeddingDim], 1 / Math.sqrt(embeddingDim));
  }

  /** { embedding: [N, D], logits: [N, C] }. training=true: batch statistics, BN updates, drop-connect. */
  apply(x: tf.Tensor4D, training: boolean): { embedding: tf.Tensor2D; logits: tf.Tensor2D } {
    const embedding = dense(this.backbone.apply(x, training, this.seeds), this.embeddingLayer);
    const logits = batchNorm(dense(embedding, this.idHead), this.idBn, training) as tf.Tensor2D;
    return { embedding, logits };
  }
}

export function createTriarchyNet(opts: TriarchyOptions): TriarchyNet {
  return new TriarchyNet(opts);
}

/** Backbone + embedding only (what loadInferenceModel builds); exactly 4,663,420 parameters for B0 + 512. */
export function createEmbeddingNet(opts: {
  backbone: BackboneConfig;
  embeddingDim: number;
  seed: number;
}): EmbeddingNet {
  return new EmbeddingNet(opts.backbone, opts.embeddingDim, opts.seed);
}
