// A stage's structured reports (ctx.report) as run events: step reports get the elapsed time since the stage
// started and an ETA from the rate of the steps made in this attempt (a resumed stage starts past step 0, and
// its earlier steps cost nothing here, so they must not count).
import type { RunEvent, StageReport } from '../contracts/events.js';

export class StepClock {
  private first?: { step: number; at: number };

  constructor(
    private readonly startedAt: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The run event for one report of the stage `stage`. */
  event(stage: string, r: StageReport): RunEvent {
    if (r.kind === 'validation')
      return { type: 'stage-validation', stage, epoch: r.epoch, epochs: r.epochs, metrics: r.metrics, best: r.best };
    const rest = { step: r.step, total: r.total, epoch: r.epoch, epochs: r.epochs, loss: r.loss };
    const t = this.now();
    const elapsedMs = t - this.startedAt;
    // The first report only starts the clock: the time before it is setup (backend, data), not steps.
    if (!this.first || r.step < this.first.step) {
      this.first = { step: r.step, at: t };
      return { type: 'stage-steps', stage, ...rest, elapsedMs };
    }
    const done = r.step - this.first.step;
    const etaMs = done > 0 ? Math.max(0, ((t - this.first.at) / done) * (r.total - r.step)) : undefined;
    return { type: 'stage-steps', stage, ...rest, elapsedMs, ...(etaMs !== undefined ? { etaMs } : {}) };
  }
}
