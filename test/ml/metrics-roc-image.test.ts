import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { equalErrorRate, rocCurve } from '../../src/ml/eval/metrics.js';
import { logFarFloor, rocSvg, writeRocPng } from '../../src/ml/eval/roc-image.js';

test('ROC PNG: linear and log-FAR panels side by side, byte-identical across runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'roc-'));
  try {
    const roc = rocCurve([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0, 0, 1, 0, 1, 1]);
    const a = join(dir, 'a.png');
    const b = join(dir, 'b.png');
    await writeRocPng(a, roc, { title: 'test <AUC 0.889>', size: 320 });
    await writeRocPng(b, roc, { title: 'test <AUC 0.889>', size: 320 });
    const meta = await sharp(a).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 640, 'two panels of 320');
    assert.equal(meta.height, 320);
    assert.deepEqual(readFileSync(a), readFileSync(b));
    // Each panel draws the curve through every ROC point; the title is XML-escaped.
    const svg = rocSvg(roc, { title: 'a<b' });
    const curves = [...svg.matchAll(/<polyline points="([^"]*)"[^>]*class="curve"/g)];
    assert.equal(curves.length, 2, 'the curve on the linear and on the log panel');
    for (const c of curves) assert.equal(c[1].split(' ').length, roc.far.length);
    assert.match(svg, /a&lt;b/);
    assert.match(svg, /false accept rate \(log\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ROC image: the EER point is marked on both panels, where FAR = 1 - TAR = EER', () => {
  // 4 same (distances 0.1..0.4), 4 different (0.3..0.6): the curves cross FAR = FRR at 0.25.
  const roc = rocCurve([0.1, 0.2, 0.35, 0.5, 0.3, 0.45, 0.55, 0.6], [0, 0, 0, 0, 1, 1, 1, 1]);
  const eer = equalErrorRate(roc);
  const size = 480;
  const svg = rocSvg(roc, { size });
  const marks = [...svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"[^>]*class="eer"/g)].map((m) => [
    Number(m[1]),
    Number(m[2]),
  ]);
  assert.equal(marks.length, 2);
  assert.equal((svg.match(new RegExp(`EER ${eer.toFixed(3)}`, 'g')) ?? []).length, 2);
  // Linear panel: x = 56 + FAR * w, y = 36 + (1 - TAR) * h with w = 480 - 72, h = 480 - 84.
  const [w, h] = [size - 72, size - 84];
  assert.ok(Math.abs(marks[0][0] - (56 + eer * w)) < 0.01, `x ${marks[0][0]}`);
  assert.ok(Math.abs(marks[0][1] - (36 + eer * h)) < 0.01, `y ${marks[0][1]}`);
  // Log panel, right of the first: x on a log axis from the floor decade to 1, same y.
  const lo = logFarFloor([roc]);
  const tLog = (Math.log10(eer) - Math.log10(lo)) / -Math.log10(lo);
  assert.ok(Math.abs(marks[1][0] - (size + 56 + tLog * w)) < 0.01, `log x ${marks[1][0]}`);
  assert.equal(marks[1][1], marks[0][1]);
  // The log axis starts at the decade below the smallest non-zero FAR (here 0.25 -> 0.1, the highest floor).
  assert.equal(lo, 0.1);
  assert.equal(logFarFloor([{ far: [0, 2e-3, 1], tar: [0, 0.5, 1], thresholds: [] }]), 1e-3);
  assert.equal(logFarFloor([{ far: [0, 1e-7, 1], tar: [0, 0.5, 1], thresholds: [] }]), 1e-4);
});
