// Live progress: step reports timed into bars with elapsed time and ETA, and validation results that the plain
// renderer always prints (its progress lines are sampled).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunEvent } from '../../src/contracts/events.js';
import { StepClock } from '../../src/execute/progress.js';
import { plainRenderer } from '../../src/cli/renderers/plain.js';
import { bar, formatDuration, stepsText, validationText } from '../../src/cli/renderers/progress-text.js';

test('StepClock: elapsed since the stage started, ETA from the rate of the steps made in this attempt', () => {
  let now = 1000;
  const clock = new StepClock(0, () => now);
  // A resumed stage: its first report is at step 41; the 40 steps before cost nothing here.
  const first = clock.event('t', { kind: 'steps', step: 41, total: 100, epoch: 5, epochs: 10, loss: 1.5 });
  assert.deepEqual(first, {
    type: 'stage-steps',
    stage: 't',
    step: 41,
    total: 100,
    epoch: 5,
    epochs: 10,
    loss: 1.5,
    elapsedMs: 1000,
  });
  now = 3000; // 10 steps in 2 s: 0.2 s a step, 49 steps to go
  const later = clock.event('t', { kind: 'steps', step: 51, total: 100 }) as Extract<RunEvent, { type: 'stage-steps' }>;
  assert.equal(later.elapsedMs, 3000);
  assert.equal(later.etaMs, 9_800);
  now = 4000;
  assert.equal((clock.event('t', { kind: 'steps', step: 100, total: 100 }) as { etaMs: number }).etaMs, 0);
  const v = clock.event('t', { kind: 'validation', epoch: 2, epochs: 10, metrics: { auc: 0.9 }, best: true });
  assert.deepEqual(v, {
    type: 'stage-validation',
    stage: 't',
    epoch: 2,
    epochs: 10,
    metrics: { auc: 0.9 },
    best: true,
  });
});

test('progress text: a bar with step/total, epoch, loss, elapsed and ETA; validation figures', () => {
  assert.equal(bar(5, 20, 10), '[###.......]');
  assert.equal(bar(0, 0, 4), '[....]');
  assert.equal(formatDuration(8_400), '8 s');
  assert.equal(formatDuration(65_000), '1m05s');
  assert.equal(formatDuration(7_380_000), '2h03m');
  assert.equal(
    stepsText({
      type: 'stage-steps',
      stage: 't',
      step: 45,
      total: 180,
      epoch: 3,
      epochs: 12,
      loss: 1.234,
      elapsedMs: 12_000,
      etaMs: 36_000,
    }),
    '[#####...............] 45/180 steps, epoch 3/12, loss 1.23, 12 s elapsed, ETA 36 s',
  );
  assert.match(stepsText({ type: 'stage-steps', stage: 't', step: 1, total: 9, elapsedMs: 0 }), /ETA \?$/);
  assert.equal(
    validationText({
      type: 'stage-validation',
      stage: 't',
      epoch: 3,
      epochs: 10,
      metrics: { accuracy: 0.8125, auc: 0.9 },
      best: true,
    }),
    'validation after epoch 3/10: accuracy 0.8125, auc 0.9000 (best so far)',
  );
});

test('plain renderer: step lines are sampled, every validation result is printed', () => {
  const lines: string[] = [];
  const sink = plainRenderer((s) => lines.push(s));
  for (let step = 1; step <= 50; step++) {
    sink({ type: 'stage-steps', stage: 'triarchy', step, total: 50, elapsedMs: step * 10 });
    if (step % 5 === 0)
      sink({
        type: 'stage-validation',
        stage: 'triarchy',
        epoch: step / 5,
        epochs: 10,
        metrics: { auc: step / 100 },
        best: false,
      });
  }
  const steps = lines.filter((l) => /steps,/.test(l));
  const validations = lines.filter((l) => /validation after epoch/.test(l));
  assert.equal(steps.length, 1, 'at most one progress line every 2 s');
  assert.match(steps[0], /triarchy: \[\.*#*\.*\] 1\/50 steps/);
  assert.equal(validations.length, 10, 'no validation result is lost');
  assert.match(validations.at(-1)!, /triarchy: validation after epoch 10\/10: auc 0\.5000$/m);
});
