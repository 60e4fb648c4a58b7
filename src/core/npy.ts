// NumPy's .npy format (version 1.0) for a 2-D float32 array: what `numpy.load` reads without further arguments.
// Magic, version, a little-endian header length, a Python-literal header padded with spaces to a multiple of 64
// bytes and ending in a newline, then the values little-endian in C order.

/** .npy bytes of a [rows, cols] float32 array given row-major. */
export function npyFloat32(values: Float32Array, rows: number, cols: number): Uint8Array {
  if (values.length !== rows * cols) throw new Error(`npy: ${values.length} values are not ${rows} x ${cols}`);
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  const unpadded = 10 + dict.length + 1;
  const header = dict + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + values.length * 4);
  out.set([0x93, ...Buffer.from('NUMPY', 'latin1'), 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  const data = new DataView(out.buffer, 10 + header.length);
  values.forEach((v, i) => data.setFloat32(4 * i, v, true));
  return out;
}

/** Reads what npyFloat32 writes (version 1.0, '<f4', C order, 2-D); for tests and tools. */
export function parseNpyFloat32(bytes: Uint8Array): { shape: [number, number]; values: Float32Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== 0x93 || Buffer.from(bytes.subarray(1, 6)).toString('latin1') !== 'NUMPY')
    throw new Error('not an .npy file');
  const len = view.getUint16(8, true);
  const header = Buffer.from(bytes.subarray(10, 10 + len)).toString('latin1');
  const m = /'descr': '<f4', 'fortran_order': False, 'shape': \((\d+), (\d+)\)/.exec(header);
  if (!m) throw new Error(`unsupported .npy header ${header.trim()}`);
  const shape: [number, number] = [Number(m[1]), Number(m[2])];
  const values = new Float32Array(shape[0] * shape[1]);
  for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(10 + len + 4 * i, true);
  return { shape, values };
}
