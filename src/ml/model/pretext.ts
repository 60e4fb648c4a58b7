// The pretext net: EfficientNet backbone + one Dense head per attribute (e.g. pose 4, expression 4, rotation 4).
import * as tf from '@tensorflow/tfjs-core';
import type { BackboneConfig, TrainableNet } from '../types.js';
import { EfficientNetBackbone } from './efficientnet.js';
import { createDense, dense, type DenseParams } from './ops.js';
import { NetBase } from './net-base.js';

export interface PretextOptions {
  backbone: BackboneConfig;
  /** Head name -> number of classes. Outputs are named `logits_<name>`. */
  heads: Record<string, number>;
  seed: number;
}

export class PretextNet extends NetBase implements TrainableNet {
  readonly backbone: EfficientNetBackbone;
  readonly heads = new Map<string, DenseParams>();

  constructor(readonly options: PretextOptions) {
    super(options.seed);
    const names = Object.keys(options.heads);
    if (names.length === 0) throw new Error('pretext heads: give at least one head, e.g. { pose: 4 }');
    this.backbone = new EfficientNetBackbone(options.backbone, this.store, 'backbone');
    for (const name of names) {
      const classes = options.heads[name];
      if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`pretext head name '${name}': use letters, digits and _ only`);
      if (!(Number.isInteger(classes) && classes > 1))
        throw new Error(`pretext head '${name}': classes must be an integer > 1, got ${classes}`);
      this.heads.set(name, createDense(this.store, `pretext/${name}`, this.backbone.outChannels, classes, true));
    }
  }

  /** See EfficientNetBackbone.largestTensorBytesPerImage. */
  largestTensorBytesPerImage(): number {
    return this.backbone.largestTensorBytesPerImage();
  }

  /** { features: [N, 1280], logits_<head>: [N, classes] for each head }. */
  apply(x: tf.Tensor4D, training: boolean): Record<string, tf.Tensor> {
    const features = this.backbone.apply(x, training, this.seeds);
    const out: Record<string, tf.Tensor> = { features };
    for (const [name, head] of this.heads) out[`logits_${name}`] = dense(features, head);
    return out;
  }
}

export function createPretextNet(opts: PretextOptions): PretextNet {
  return new PretextNet(opts);
}
