import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { sniffImageFormat } from '../../src/ml/data/image-format.js';

test('sniffImageFormat: each format sharp or the Netpbm reader decodes, from its first bytes; nothing else', async () => {
  const pixel = sharp({ create: { width: 2, height: 2, channels: 3, background: { r: 9, g: 9, b: 9 } } });
  for (const [format, bytes] of [
    ['png', await pixel.clone().png().toBuffer()],
    ['jpeg', await pixel.clone().jpeg().toBuffer()],
    ['gif', await pixel.clone().gif().toBuffer()],
    ['webp', await pixel.clone().webp().toBuffer()],
    ['tiff', await pixel.clone().tiff().toBuffer()],
    ['avif', await pixel.clone().avif().toBuffer()],
  ] as const) {
    assert.equal(sniffImageFormat(bytes.subarray(0, 16)), format, format);
    assert.equal((await sharp(bytes).metadata()).width, 2, `sharp reads the ${format} it wrote`);
  }
  assert.equal(sniffImageFormat(Buffer.from('P5\n2 2\n255\n\0\0\0\0')), 'netpbm');
  assert.equal(sniffImageFormat(Buffer.from('P6 2 2 255 ')), 'netpbm');
  for (const other of ['Pictures of faces', 'image1,image2,label\n', '', 'RIFF\0\0\0\0WAVEfmt ', 'BM6\0'])
    assert.equal(sniffImageFormat(Buffer.from(other)), undefined, JSON.stringify(other));
});
