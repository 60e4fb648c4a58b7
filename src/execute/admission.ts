// Admission: at most `jobs` stages at once, and within a memory budget. One stage may always run, whatever its
// estimate, so nothing waits forever. Waiting stages start in arrival order.
import { totalmem } from 'node:os';
import type { StageSpec } from '../load/load.js';

/** A stage's peak memory estimate in MiB: its kind's own, else 4 GiB for TensorFlow.js kinds (wasm's ceiling). */
export function stageMemoryMB(stage: StageSpec): number {
  return stage.kind.memoryMB?.(stage.params) ?? (stage.kind.usesTensorflow ? 4096 : 256);
}

export function defaultMemoryBudgetMB(): number {
  return Math.floor((totalmem() / 2 ** 20) * 0.75);
}

export class Admission {
  private running = 0;
  private inUse = 0;
  private readonly queue: Array<{ mem: number; start: () => void }> = [];

  constructor(
    readonly jobs: number,
    readonly budgetMB: number,
  ) {}

  /** Resolves when the stage may start, with the function that gives its slot back (idempotent). */
  async acquire(mem: number): Promise<() => void> {
    await new Promise<void>((start) => {
      this.queue.push({ mem, start });
      this.pump();
    });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      this.inUse -= mem;
      this.pump();
    };
  }

  private fits(mem: number): boolean {
    return this.running === 0 || (this.running < this.jobs && this.inUse + mem <= this.budgetMB);
  }

  private pump(): void {
    while (this.queue.length && this.fits(this.queue[0].mem)) {
      const next = this.queue.shift()!;
      this.running++;
      this.inUse += next.mem;
      next.start();
    }
  }
}
