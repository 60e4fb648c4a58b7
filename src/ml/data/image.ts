// Image decoding to fixed-size RGB. PNG/JPEG/WebP (and anything else sharp reads) go through sharp;
// PGM/PPM are parsed here (sharp cannot) and then resized by sharp from raw pixels.
// Decoded images are kept as 8-bit RGB (4x smaller than float32 in caches) and converted to
// float32 [0, 1] only when a batch is assembled.
import { open, readFile } from 'node:fs/promises';
import sharp from 'sharp';
import {
  looksLikeNetpbm,
  NETPBM_MAX_PIXELS,
  netpbmRasterBytes,
  netpbmToRgb8,
  parseNetpbm,
  parseNetpbmHeader,
} from './netpbm.js';

export interface ImageSize {
  width: number;
  height: number;
  /** How the aspect ratio is handled: 'fill' stretches (default), 'cover' crops the centre, 'contain' pads with black. */
  fit?: 'fill' | 'cover' | 'contain';
}

/** 8-bit RGB, HWC, row-major. */
export interface Rgb8Image {
  width: number;
  height: number;
  data: Uint8Array;
}

export class ImageReadError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`cannot read image ${file}: ${reason}`);
    this.name = 'ImageReadError';
  }
}

export interface ImageHeader {
  format: string;
  width: number;
  height: number;
}

/** Bytes read from a file's start to find its format and size (a PGM header with its comments fits). */
const HEADER_BYTES = 64 * 1024;

/**
 * Format and size from the file's header only, without decoding: cheap enough to check every image of a dataset
 * before anything trains. A binary PGM/PPM must also be long enough for its raster. Errors name the file.
 */
export async function probeImage(file: string): Promise<ImageHeader> {
  try {
    const fh = await open(file, 'r');
    let head: Buffer;
    let size: number;
    try {
      size = (await fh.stat()).size;
      head = Buffer.alloc(Math.min(size, HEADER_BYTES));
      await fh.read(head, 0, head.length, 0);
    } finally {
      await fh.close();
    }
    if (looksLikeNetpbm(head)) {
      const h = parseNetpbmHeader(head, file);
      const need = h.end + 1 + netpbmRasterBytes(h);
      if (h.binary && size < need)
        throw new Error(`truncated file: ${size} bytes, ${need} expected for ${h.width}x${h.height}`);
      return { format: h.channels === 1 ? 'pgm' : 'ppm', width: h.width, height: h.height };
    }
    const m = await sharp(file, { failOn: 'error' }).metadata();
    if (!m.width || !m.height) throw new Error(`no image size in the ${m.format} header`);
    if (m.width * m.height > NETPBM_MAX_PIXELS)
      throw new Error(`size ${m.width}x${m.height} is beyond the limit (${NETPBM_MAX_PIXELS} pixels)`);
    return { format: m.format, width: m.width, height: m.height };
  } catch (e) {
    const msg = (e as Error).message;
    throw new ImageReadError(file, msg.startsWith(file) ? msg.slice(file.length + 2) : msg);
  }
}

/** probeImage over many files, a few at a time; the problems by file (empty when every header is fine). */
export async function probeImages(files: string[], concurrency = 8): Promise<Map<string, string>> {
  const bad = new Map<string, string>();
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const f = files[next++];
      try {
        await probeImage(f);
      } catch (e) {
        bad.set(f, e instanceof ImageReadError ? e.reason : (e as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  return bad;
}

/** Decode `file` and resize it to `size`. Errors name the file. */
export async function decodeImage(file: string, size: ImageSize): Promise<Rgb8Image> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new ImageReadError(file, (e as Error).message);
  }
  return decodeImageBytes(bytes, file, size);
}

/** Same as decodeImage for bytes already in memory (`file` names them in errors). */
export async function decodeImageBytes(bytes: Uint8Array, file: string, size: ImageSize): Promise<Rgb8Image> {
  const { width, height } = size;
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0))
    throw new Error(`invalid image size ${width}x${height}: width and height must be positive integers`);
  try {
    let pipeline: ReturnType<typeof sharp>;
    if (looksLikeNetpbm(bytes)) {
      const img = parseNetpbm(bytes, file);
      pipeline = sharp(netpbmToRgb8(img), { raw: { width: img.width, height: img.height, channels: 3 } });
    } else {
      pipeline = sharp(bytes, { failOn: 'error' }).autoOrient();
    }
    const { data, info } = await pipeline
      .resize(width, height, { fit: size.fit ?? 'fill', kernel: 'linear', background: { r: 0, g: 0, b: 0 } })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.width !== width || info.height !== height) throw new Error(`resize gave ${info.width}x${info.height}`);
    return {
      width,
      height,
      data: toRgb(new Uint8Array(data.buffer, data.byteOffset, data.length), info.channels, width * height),
    };
  } catch (e) {
    if (e instanceof ImageReadError) throw e;
    const msg = (e as Error).message;
    // NetpbmError already starts with the file name.
    throw new ImageReadError(file, msg.startsWith(file) ? msg.slice(file.length + 2) : msg);
  }
}

function toRgb(data: Uint8Array, channels: number, pixels: number): Uint8Array {
  if (channels === 3) return data;
  const out = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const base = i * channels;
    if (channels < 3) out.fill(data[base], 3 * i, 3 * i + 3);
    else for (let c = 0; c < 3; c++) out[3 * i + c] = data[base + c]!;
  }
  return out;
}

/** 8-bit RGB to float32 in [0, 1], written into `out` at `offset` (for assembling batches without copies). */
export function rgb8ToFloat(img: Rgb8Image, out = new Float32Array(img.data.length), offset = 0): Float32Array {
  const d = img.data;
  for (let i = 0; i < d.length; i++) out[offset + i] = d[i] / 255;
  return out;
}
