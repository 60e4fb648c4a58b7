// A training stage's steps as structured reports (a bar with step/total and ETA in every renderer): steps are
// counted over all epochs, so a resumed stage starts where it stopped.
import type { StageContext } from '../../contracts/stage-kind.js';

export function stepReporter(
  ctx: Pick<StageContext, 'report'>,
  stepsPerEpoch: number,
  epochs: number,
): (s: { epoch: number; step: number; loss: number }) => void {
  return (s) =>
    ctx.report({
      kind: 'steps',
      step: (s.epoch - 1) * stepsPerEpoch + s.step,
      total: epochs * stepsPerEpoch,
      epoch: s.epoch,
      epochs,
      loss: s.loss,
    });
}
