import { test } from 'node:test';
import assert from 'node:assert/strict';
import { npyFloat32, parseNpyFloat32 } from '../../src/core/npy.js';

test('npy: version 1.0, <f4, C order, the header padded to 64 bytes with a newline, values little-endian', () => {
  const values = Float32Array.from([1, -2.5, 0.1, 3e-8, 7, 8]);
  const bytes = npyFloat32(values, 2, 3);
  assert.deepEqual([...bytes.subarray(0, 8)], [0x93, ...Buffer.from('NUMPY'), 1, 0]);
  const len = bytes[8] + 256 * bytes[9];
  const header = Buffer.from(bytes.subarray(10, 10 + len)).toString('latin1');
  assert.equal((10 + len) % 64, 0, 'data starts on a 64-byte boundary');
  assert.match(header, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
  assert.equal(bytes.length, 10 + len + 6 * 4);
  assert.equal(new DataView(bytes.buffer).getFloat32(10 + len + 4, true), -2.5);
  const back = parseNpyFloat32(bytes);
  assert.deepEqual(back.shape, [2, 3]);
  assert.deepEqual(back.values, values);
  assert.throws(() => npyFloat32(values, 4, 2), /6 values are not 4 x 2/);
});
