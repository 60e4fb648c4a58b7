// What every facepipe net shares: its variables in one ParamStore (names as saved in files) and a seeded
// stream for drop-connect masks that the trainer reseeds per step (TrainableNet.setStepSeed).
import type * as tf from '@tensorflow/tfjs-core';
import { ParamStore, SeedStream } from './ops.js';

export abstract class NetBase {
  readonly store: ParamStore;
  protected readonly seeds: SeedStream;

  constructor(seed: number) {
    this.store = new ParamStore(seed);
    this.seeds = new SeedStream(seed);
  }

  /** Reseeds drop-connect for the following apply() calls. */
  setStepSeed(seed: string): void {
    this.seeds.reset(seed);
  }
  /** Named variables (logical names, as saved in files). */
  namedVariables(): Map<string, tf.Variable> {
    return this.store.vars;
  }
  trainableVariables(): tf.Variable[] {
    return this.store.trainableVariables();
  }
  stateVariables(): tf.Variable[] {
    return this.store.stateVariables();
  }
  dispose(): void {
    this.store.dispose();
  }
}
