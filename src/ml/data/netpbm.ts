// Netpbm reader (PGM/PPM: P2, P5, P3, P6). sharp cannot read these, and the classic face sets ship as PGM.
// Every header field is validated before allocating, so a corrupt file gives an error naming it, never a crash.

export interface NetpbmImage {
  width: number;
  height: number;
  /** 1 for PGM, 3 for PPM. */
  channels: 1 | 3;
  maxval: number;
  /** Samples as stored (0..maxval), HWC, row-major. */
  data: Uint16Array;
}

/** Largest width or height accepted; guards against a corrupt header asking for a huge allocation. */
export const NETPBM_MAX_SIDE = 32768;
/** Largest pixel count accepted (width * height). */
export const NETPBM_MAX_PIXELS = 100_000_000;

export class NetpbmError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'NetpbmError';
  }
}

const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;

/** True when the bytes start with a Netpbm magic number this reader handles. */
export function looksLikeNetpbm(buf: Uint8Array): boolean {
  return (
    buf.length >= 2 && buf[0] === 0x50 && (buf[1] === 0x32 || buf[1] === 0x33 || buf[1] === 0x35 || buf[1] === 0x36)
  );
}

export interface NetpbmHeader {
  width: number;
  height: number;
  channels: 1 | 3;
  maxval: number;
  binary: boolean;
  /** Offset of the byte after maxval (binary rasters start one whitespace byte later). */
  end: number;
}

/** Read and validate a PGM/PPM header (enough bytes of the file's start; `file` names it in errors). */
export function parseNetpbmHeader(buf: Uint8Array, file: string): NetpbmHeader {
  const fail = (reason: string): never => {
    throw new NetpbmError(file, reason);
  };
  if (buf.length < 2 || buf[0] !== 0x50) fail('not a PGM/PPM file (bad magic number; expected P2, P3, P5 or P6)');
  const kind = String.fromCharCode(buf[1]);
  if (!['2', '3', '5', '6'].includes(kind))
    fail(`unsupported Netpbm magic number "P${kind}" (expected P2, P3, P5 or P6)`);
  const channels: 1 | 3 = kind === '2' || kind === '5' ? 1 : 3;
  const binary = kind === '5' || kind === '6';
  const r = { pos: 2 };
  const width = readInt(buf, r, 'width', fail);
  const height = readInt(buf, r, 'height', fail);
  const maxval = readInt(buf, r, 'maxval', fail);
  if (width < 1 || height < 1) fail(`invalid size ${width}x${height}`);
  if (width > NETPBM_MAX_SIDE || height > NETPBM_MAX_SIDE || width * height > NETPBM_MAX_PIXELS)
    fail(`size ${width}x${height} is beyond the limit (${NETPBM_MAX_SIDE} per side, ${NETPBM_MAX_PIXELS} pixels)`);
  if (maxval < 1 || maxval > 65535) fail(`maxval ${maxval} is out of range 1..65535`);
  return { width, height, channels, maxval, binary, end: r.pos };
}

/** Bytes a binary raster needs after the header's separator byte (0 for ASCII rasters, which have no fixed size). */
export function netpbmRasterBytes(h: NetpbmHeader): number {
  return h.binary ? h.width * h.height * h.channels * (h.maxval > 255 ? 2 : 1) : 0;
}

// Reads one whitespace-separated decimal token at r.pos, skipping '#' comments (allowed anywhere in the header).
function readInt(buf: Uint8Array, r: { pos: number }, what: string, fail: (reason: string) => never): number {
  for (;;) {
    while (r.pos < buf.length && isSpace(buf[r.pos])) r.pos++;
    if (r.pos < buf.length && buf[r.pos] === 0x23) {
      while (r.pos < buf.length && buf[r.pos] !== 0x0a && buf[r.pos] !== 0x0d) r.pos++;
      continue;
    }
    break;
  }
  if (r.pos >= buf.length) fail(`truncated file: missing ${what}`);
  const start = r.pos;
  let value = 0;
  while (r.pos < buf.length && buf[r.pos] >= 0x30 && buf[r.pos] <= 0x39) {
    value = value * 10 + (buf[r.pos] - 0x30);
    if (value > 1e9) fail(`${what} is absurdly large`);
    r.pos++;
  }
  if (r.pos === start) fail(`invalid ${what}: expected a decimal number at byte ${start}`);
  if (r.pos < buf.length && !isSpace(buf[r.pos]) && buf[r.pos] !== 0x23)
    fail(`invalid ${what}: unexpected byte at ${r.pos}`);
  return value;
}

/** Parse a PGM/PPM file's bytes. `file` is only used in error messages. */
export function parseNetpbm(buf: Uint8Array, file: string): NetpbmImage {
  const fail = (reason: string): never => {
    throw new NetpbmError(file, reason);
  };
  const { width, height, channels, maxval, binary, end } = parseNetpbmHeader(buf, file);
  const count = width * height * channels;
  if (binary) {
    let pos = end;
    // Exactly one whitespace byte separates the header from the raster.
    if (pos >= buf.length) fail('truncated file: no pixel data');
    pos++;
    const bytesPer = maxval > 255 ? 2 : 1;
    const need = count * bytesPer;
    if (buf.length - pos < need)
      fail(`truncated file: pixel data has ${buf.length - pos} bytes, ${need} expected for ${width}x${height}`);
    const data = new Uint16Array(count);
    let over = false;
    if (bytesPer === 1) {
      for (let i = 0; i < count; i++) {
        const v = buf[pos + i];
        if (v > maxval) over = true;
        data[i] = v;
      }
    } else {
      // 16-bit samples are big-endian.
      for (let i = 0; i < count; i++) {
        const v = (buf[pos + 2 * i] << 8) | buf[pos + 2 * i + 1];
        if (v > maxval) over = true;
        data[i] = v;
      }
    }
    if (over) fail(`a sample exceeds maxval ${maxval}`);
    return { width, height, channels, maxval, data };
  }
  const data = new Uint16Array(count);
  const r = { pos: end };
  for (let i = 0; i < count; i++) {
    const v = readInt(buf, r, `sample ${i} of ${count}`, fail);
    if (v > maxval) fail(`sample ${i} (${v}) exceeds maxval ${maxval}`);
    data[i] = v;
  }
  return { width, height, channels, maxval, data };
}

/** Netpbm samples scaled to 8-bit RGB (grey replicated to 3 channels), ready for sharp's raw input. */
export function netpbmToRgb8(img: NetpbmImage): Uint8Array {
  const n = img.width * img.height;
  const out = new Uint8Array(n * 3);
  const scale = 255 / img.maxval;
  if (img.channels === 1) {
    for (let i = 0; i < n; i++) {
      const v = Math.round(img.data[i] * scale);
      out[3 * i] = v;
      out[3 * i + 1] = v;
      out[3 * i + 2] = v;
    }
  } else {
    for (let i = 0; i < 3 * n; i++) out[i] = Math.round(img.data[i] * scale);
  }
  return out;
}
