// Which image format a file holds, from its first bytes (for datasets whose files carry no extension). Only the
// formats facepipe decodes: what sharp reads (its prebuilt libvips) and Netpbm (facepipe's own reader).
import { open } from 'node:fs/promises';
import { looksLikeNetpbm } from './netpbm.js';

export type ImageFormat = 'png' | 'jpeg' | 'gif' | 'webp' | 'tiff' | 'avif' | 'netpbm';

/** Bytes sniffImageFormat needs. */
export const SNIFF_BYTES = 16;

const ascii = (b: Uint8Array, at: number, text: string) =>
  b.length >= at + text.length && [...text].every((c, i) => b[at + i] === c.charCodeAt(0));

/** The format whose signature starts `b`, or undefined. */
export function sniffImageFormat(b: Uint8Array): ImageFormat | undefined {
  if (b.length >= 8 && b[0] === 0x89 && ascii(b, 1, 'PNG\r\n\x1a\n')) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (ascii(b, 0, 'GIF87a') || ascii(b, 0, 'GIF89a')) return 'gif';
  if (ascii(b, 0, 'RIFF') && ascii(b, 8, 'WEBP')) return 'webp';
  if (ascii(b, 0, 'II*\0') || ascii(b, 0, 'MM\0*')) return 'tiff';
  if (ascii(b, 4, 'ftypavif') || ascii(b, 4, 'ftypavis')) return 'avif';
  if (looksLikeNetpbm(b) && b.length >= 3 && /\s/.test(String.fromCharCode(b[2]))) return 'netpbm';
  return undefined;
}

/** The image format of a file's content, or undefined (not an image facepipe reads, or unreadable). */
export async function fileImageFormat(file: string): Promise<ImageFormat | undefined> {
  let fh;
  try {
    fh = await open(file, 'r');
    const buf = new Uint8Array(SNIFF_BYTES);
    const { bytesRead } = await fh.read(buf, 0, SNIFF_BYTES, 0);
    return sniffImageFormat(buf.subarray(0, bytesRead));
  } catch {
    return undefined;
  } finally {
    await fh?.close();
  }
}
