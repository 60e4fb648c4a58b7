import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { rocCurve } from '../../src/ml/eval/metrics.js';
import { rocSvg, writeRocPng } from '../../src/ml/eval/roc-image.js';

test('ROC PNG is a valid image of the requested size, byte-identical across runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'roc-'));
  try {
    const roc = rocCurve([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0, 0, 1, 0, 1, 1]);
    const a = join(dir, 'a.png');
    const b = join(dir, 'b.png');
    await writeRocPng(a, roc, { title: 'test <AUC 0.889>', size: 320 });
    await writeRocPng(b, roc, { title: 'test <AUC 0.889>', size: 320 });
    const meta = await sharp(a).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 320);
    assert.equal(meta.height, 320);
    assert.deepEqual(readFileSync(a), readFileSync(b));
    // The curve is drawn through every ROC point; the title is XML-escaped.
    const svg = rocSvg(roc, { title: 'a<b' });
    assert.equal(svg.match(/<polyline points="([^"]*)"/)![1].split(' ').length, roc.far.length);
    assert.match(svg, /a&lt;b/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
