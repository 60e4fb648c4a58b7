import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NETPBM_MAX_SIDE, NetpbmError, netpbmToRgb8, parseNetpbm } from '../../src/ml/data/netpbm.js';
import { decodeImage, ImageReadError } from '../../src/ml/data/image.js';

const bytes = (header: string, body: number[] = []) => new Uint8Array([...Buffer.from(header, 'latin1'), ...body]);

test('P5 8-bit with comments in the header', () => {
  const img = parseNetpbm(bytes('P5\n# made by hand\n3 2 # size\n# max\n200\n', [0, 50, 100, 150, 200, 7]), 'a.pgm');
  assert.deepEqual([img.width, img.height, img.channels, img.maxval], [3, 2, 1, 200]);
  assert.deepEqual([...img.data], [0, 50, 100, 150, 200, 7]);
});

test('P5 16-bit is big-endian', () => {
  const img = parseNetpbm(bytes('P5 2 1 1000\n', [0x03, 0xe8, 0x01, 0x00]), 'b.pgm');
  assert.deepEqual([...img.data], [1000, 256]);
  // Scaled to 8-bit grey replicated into 3 channels: 1000/1000 -> 255, 256/1000*255 -> 65.28 -> 65.
  assert.deepEqual([...netpbmToRgb8(img)], [255, 255, 255, 65, 65, 65]);
});

test('P2 ASCII grey and P3 ASCII colour', () => {
  const g = parseNetpbm(bytes('P2\n# c\n2 2\n15\n0 15\n 7\n# inner comment\n 8\n'), 'c.pgm');
  assert.deepEqual([...g.data], [0, 15, 7, 8]);
  const c = parseNetpbm(bytes('P3 1 2 65535\n65535 0 1\n2 3 40000\n'), 'd.ppm');
  assert.equal(c.channels, 3);
  assert.deepEqual([...c.data], [65535, 0, 1, 2, 3, 40000]);
});

test('P6 8-bit colour', () => {
  const img = parseNetpbm(bytes('P6\n2 1\n255\n', [1, 2, 3, 4, 5, 6]), 'e.ppm');
  assert.deepEqual([img.channels, ...img.data], [3, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual([...netpbmToRgb8(img)], [1, 2, 3, 4, 5, 6]);
});

const rejects = (buf: Uint8Array, pattern: RegExp) => {
  assert.throws(
    () => parseNetpbm(buf, '/data/x/bad.pgm'),
    (e: unknown) => e instanceof NetpbmError && e.message.startsWith('/data/x/bad.pgm: ') && pattern.test(e.message),
  );
};

test('bad magic numbers are errors naming the file', () => {
  rejects(bytes('GIF89a'), /bad magic/);
  rejects(bytes('P4 1 1\n', [0]), /unsupported Netpbm magic number "P4"/);
  rejects(bytes('P'), /bad magic/);
});

test('truncated files are errors, in the header and in the raster', () => {
  rejects(bytes('P5\n3 2\n'), /truncated file: missing maxval/);
  rejects(bytes('P5 3'), /truncated file: missing height/);
  rejects(bytes('P5 3 2 255\n', [1, 2, 3]), /truncated file: pixel data has 3 bytes, 6 expected/);
  rejects(bytes('P5 2 1 1000\n', [0, 1, 0]), /truncated file: pixel data has 3 bytes, 4 expected/);
  rejects(bytes('P2 2 2 9\n1 2 3'), /truncated file: missing sample 3/);
  rejects(bytes('P5 2 2 255'), /truncated file: no pixel data/);
});

test('maxval 0 and above 65535 are rejected', () => {
  rejects(bytes('P5 1 1 0\n', [0]), /maxval 0 is out of range 1..65535/);
  rejects(bytes('P5 1 1 65536\n', [0, 0]), /maxval 65536 is out of range/);
  rejects(bytes('P2 1 1 99999999999\n1'), /absurdly large/);
});

test('huge dimensions are rejected before allocating', () => {
  rejects(bytes(`P5 ${NETPBM_MAX_SIDE + 1} 1 255\n`, [0]), /beyond the limit/);
  rejects(bytes('P5 20000 20000 255\n', [0]), /beyond the limit/); // 400 M pixels
  rejects(bytes('P5 0 4 255\n'), /invalid size 0x4/);
});

test('samples above maxval and garbage tokens are rejected', () => {
  rejects(bytes('P5 2 1 100\n', [5, 101]), /exceeds maxval 100/);
  rejects(bytes('P2 2 1 9\n1 x\n'), /invalid sample 1/);
  rejects(bytes('P5 2x 1 9\n'), /invalid width/);
});

test('decodeImage reads PGM via the Netpbm parser, grey becomes 3 equal channels, resized', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'netpbm-'));
  const file = join(dir, 'g.pgm');
  // 4x2, maxval 100: left half 0, right half 100 (white).
  await writeFile(file, bytes('P5 4 2 100\n', [0, 0, 100, 100, 0, 0, 100, 100]));
  const img = await decodeImage(file, { width: 2, height: 1 });
  assert.equal(img.data.length, 2 * 1 * 3);
  const [r, g, b, r2, g2, b2] = img.data;
  assert.equal(r, g);
  assert.equal(g, b);
  assert.equal(r2, g2);
  assert.equal(g2, b2);
  assert.ok(r < 64 && r2 > 191, `left dark, right bright: ${[...img.data]}`);
  const bad = join(dir, 'bad.pgm');
  await writeFile(bad, bytes('P5 4 2 0\n', [0]));
  await assert.rejects(
    decodeImage(bad, { width: 2, height: 2 }),
    (e: unknown) => e instanceof ImageReadError && e.message.includes(bad) && /maxval 0/.test(e.message),
  );
});
