// Seeded randomness for sampling and augmentation. seedrandom's ARC4 generator with {state: true}
// so that its state can be saved in a checkpoint and restored exactly.
import seedrandom from 'seedrandom';

export type RngState = seedrandom.State.Arc4;
export type Rng = seedrandom.StatefulPRNG<RngState>;

/** A new generator from a seed (number or string). */
export function createRng(seed: number | string): Rng {
  return seedrandom(String(seed), { state: true });
}

/** A generator continuing exactly from a saved `rng.state()`. */
export function restoreRng(state: RngState): Rng {
  return seedrandom('', { state });
}

/** Integer in [0, n). */
export function randInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

/** Uniform in [lo, hi). */
export function uniform(rng: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * rng();
}

/** In-place Fisher-Yates shuffle. */
export function shuffleInPlace<T>(rng: Rng, a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = randInt(rng, i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}
