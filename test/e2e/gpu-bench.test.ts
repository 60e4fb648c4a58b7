// bench:gpu (the GPU check) rehearsed on the software adapter with --tiny: doctor, the tiny pipeline on webgpu and
// a training row with dispatches all run and report; without --tiny a software adapter is refused before any figure.
// (It was written for an NVIDIA machine; what it prints there is not checked here.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/core/package-root.js';
import { softwareAdapterEnv } from '../ml/webgpu-adapter.js';

const script = join(packageRoot(), 'dist', 'bench', 'gpu.bench.js');
const env = () => ({ ...process.env, ...softwareAdapterEnv() });

test('bench:gpu --tiny runs doctor, the tiny pipeline and a training row on webgpu', () => {
  const r = spawnSync(process.execPath, [script, '--tiny', '--json'], {
    encoding: 'utf8',
    env: env(),
    timeout: 300_000,
  });
  assert.equal(r.status, 0, r.stderr.slice(-3000));
  const out = JSON.parse(r.stdout) as {
    tiny: boolean;
    doctor: string;
    pipeline: { ok: boolean; summary: string };
    rows: Array<{ size: number; batch: number; webgpu?: { imgPerSec: number; dispatches?: number } }>;
    seconds: number;
  };
  assert.equal(out.tiny, true);
  assert.match(out.doctor, /^ok\s+webgpu .*software/m);
  assert.ok(out.pipeline.ok, out.pipeline.summary);
  assert.match(out.pipeline.summary, /^evaluate: .*auc/);
  assert.equal(out.rows.length, 1);
  assert.ok(out.rows[0].webgpu!.imgPerSec > 0);
  assert.ok(out.rows[0].webgpu!.dispatches! > 100, `dispatches ${out.rows[0].webgpu!.dispatches}`);
  assert.match(r.stderr, /\| 32 px, batch 4 \| [\d.]+ \|/, 'the table goes to stderr with --json');
});

test('bench:gpu without --tiny refuses a software adapter and prints no figure', () => {
  const r = spawnSync(process.execPath, [script], { encoding: 'utf8', env: env(), timeout: 120_000 });
  assert.equal(r.status, 1);
  assert.match(r.stdout, /only a software adapter: this check needs a hardware GPU.*nothing was measured/);
  assert.doesNotMatch(r.stdout, /img\/s|\| 64 px/);
});
