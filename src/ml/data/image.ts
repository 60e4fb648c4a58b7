// Image decoding to fixed-size RGB. PNG/JPEG/WebP (and anything else sharp reads) go through sharp;
// PGM/PPM are parsed here (sharp cannot) and then resized by sharp from raw pixels.
// Decoded images are kept as 8-bit RGB (4x smaller than float32 in caches) and converted to
// float32 [0, 1] only when a batch is assembled.
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { looksLikeNetpbm, netpbmToRgb8, parseNetpbm } from './netpbm.js';

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
    reason: string,
  ) {
    super(`cannot read image ${file}: ${reason}`);
    this.name = 'ImageReadError';
  }
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
    return { width, height, data: toRgb(new Uint8Array(data.buffer, data.byteOffset, data.length), info.channels, width * height) };
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
