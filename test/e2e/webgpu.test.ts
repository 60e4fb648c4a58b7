// The tiny face pipeline end to end with --backend webgpu on the software adapter (see test/ml/webgpu-adapter.ts):
// every stage runs on webgpu, the run record names the adapter, and a run killed during triarchy on webgpu resumes
// from its checkpoint on wasm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { finalStates, makeWorkspace, removeWorkspace, repoRoot, runCli, startCli, type Event } from '../engine/rig.js';
import { softwareAdapterEnv } from '../ml/webgpu-adapter.js';

const STAGES = ['split', 'pretext', 'triarchy', 'prune', 'evaluate'];
const args = (backend: string, ...extra: string[]) => [
  'run',
  '--config',
  'configs/tiny.yaml',
  '--progress',
  'json',
  '--backend',
  backend,
  ...extra,
];
const ran = (events: Event[]) =>
  Object.entries(finalStates(events))
    .filter(([, s]) => s === 'done')
    .map(([k]) => k)
    .sort();
const latestRun = (ws: string) => join(ws, 'results/runs', readdirSync(join(ws, 'results/runs')).sort().at(-1)!);

test('the tiny pipeline runs on webgpu; a run killed on webgpu resumes on wasm', async () => {
  Object.assign(process.env, softwareAdapterEnv()); // inherited by the CLI processes
  const ws = makeWorkspace();
  try {
    for (const d of ['pipelines', 'configs', 'data/cmu-faces'])
      cpSync(join(repoRoot(), d), join(ws, d), { recursive: true });
    // evaluate.runtime tfjs: evaluate embeds on webgpu too (its default would be onnxruntime when installed).
    const first = await runCli(ws, args('webgpu', '--set', 'evaluate.runtime=tfjs'), 300_000);
    assert.equal(first.code, 0, first.stderr + first.stdout.slice(-2000));
    assert.deepEqual(ran(first.events), [...STAGES].sort());
    const backends = first.events.filter((e) => e.type === 'backend').map((e) => (e as { backend: string }).backend);
    assert.ok(backends.length > 0 && backends.every((b) => b === 'webgpu'), `backends: ${backends.join(', ')}`);
    const record = JSON.parse(readFileSync(join(latestRun(ws), 'run.json'), 'utf8')) as {
      backend: { used: Record<string, string>; adapters: Record<string, string> };
    };
    for (const stage of ['pretext', 'triarchy', 'prune', 'evaluate']) {
      assert.equal(record.backend.used[stage], 'webgpu', stage);
      assert.match(record.backend.adapters[stage], /llvmpipe.*software \(fallback adapter\)/, stage);
    }
    const metrics = JSON.parse(
      readFileSync(join(ws, 'results/face-verification/evaluate/report/metrics.json'), 'utf8'),
    ) as { test: { auc: number } };
    assert.ok(metrics.test.auc >= 0 && metrics.test.auc <= 1);

    const changed = ['--set', 'triarchy.loss.weights.center=0.5'];
    const killed = startCli(ws, args('webgpu', ...changed), (e, child) => {
      if (e.type === 'stage-validation' && e.stage === 'triarchy' && e.epoch === 1) child.kill('SIGKILL');
    });
    const k = await killed.done;
    assert.equal(k.signal, 'SIGKILL', 'the run should have been killed during triarchy');
    const resumed = await runCli(ws, args('wasm', ...changed), 300_000);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(ran(resumed.events), ['evaluate', 'prune', 'triarchy']);
    const why = resumed.events.find(
      (e) => e.type === 'stage-state' && e.stage === 'triarchy' && e.state === 'running',
    ) as { reason: string };
    assert.match(why.reason, /resuming from the interrupted run's checkpoint/);
    const log = readFileSync(join(latestRun(ws), 'logs', 'triarchy.log'), 'utf8');
    assert.match(log, /^epoch 2\/2/m);
    assert.doesNotMatch(log, /^epoch 1\/2/m, 'epoch 1 (trained on webgpu) must not be trained again');
  } finally {
    removeWorkspace(ws);
  }
});
