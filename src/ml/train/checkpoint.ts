// Epoch checkpoints: one file (magic, sha256 of the rest, JSON header, raw tensor bytes), written to a temporary
// name, fsynced and renamed, so a killed process leaves either the previous or the new checkpoint. A checkpoint
// whose bytes do not match its digest (one flipped bit is enough) or that cannot be read is never resumed: it is
// removed, the caller is told why, and training restarts from scratch, which gives what an uninterrupted run does.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { tmpName, writeError } from '../../core/fsutil.js';

const MAGIC = 'FPCK2\n';
const DIGEST_BYTES = 32;
export const CHECKPOINT_FILE = 'epoch-checkpoint.fpck';

export interface CheckpointTensor {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  data: Float32Array | Int32Array;
}

export interface CheckpointContents {
  /** Free-form JSON (epoch, step, rng state, history...). */
  meta: Record<string, unknown>;
  tensors: CheckpointTensor[];
}

export async function readTensor(t: tf.Tensor, name: string): Promise<CheckpointTensor> {
  const dtype = t.dtype === 'int32' || t.dtype === 'bool' ? 'int32' : 'float32';
  const src = dtype === 'int32' && t.dtype !== 'int32' ? tf.cast(t, 'int32') : t;
  const data = (await src.data()) as Float32Array | Int32Array;
  if (src !== t) src.dispose();
  return {
    name,
    shape: t.shape.slice(),
    dtype,
    data: dtype === 'int32' ? Int32Array.from(data) : Float32Array.from(data),
  };
}

export async function writeCheckpoint(
  dir: string,
  contents: CheckpointContents,
  file = CHECKPOINT_FILE,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  let offset = 0;
  const entries = contents.tensors.map((t) => {
    const e = { name: t.name, shape: t.shape, dtype: t.dtype, offset, length: t.data.length };
    offset += t.data.byteLength;
    return e;
  });
  const header = Buffer.from(JSON.stringify({ meta: contents.meta, tensors: entries }), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  const path = join(dir, file);
  const tmp = tmpName(path); // names its writer, so a sweep can remove it once that process is dead
  const h = createHash('sha256').update(len).update(header);
  for (const t of contents.tensors) h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  try {
    const fh = await open(tmp, 'w');
    try {
      // One gathered write: a write per tensor costs more than the data (hundreds of tensors per checkpoint).
      const parts = [
        Buffer.from(MAGIC),
        h.digest(),
        len,
        header,
        ...contents.tensors.map((t) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
      ];
      const { bytesWritten } = await fh.writev(parts);
      const total = parts.reduce((n, b) => n + b.byteLength, 0);
      if (bytesWritten !== total) throw new Error(`checkpoint ${tmp}: wrote ${bytesWritten} of ${total} bytes`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw writeError(path, e); // a full disk names the checkpoint, not just 'write'
  }
  return path;
}

type HeaderEntry = { name: string; shape: number[]; dtype: 'float32' | 'int32'; offset: number; length: number };

function isHeader(v: unknown): v is { meta: Record<string, unknown>; tensors: HeaderEntry[] } {
  const h = v as { meta?: unknown; tensors?: unknown } | null;
  return (
    typeof h === 'object' &&
    h !== null &&
    typeof h.meta === 'object' &&
    h.meta !== null &&
    Array.isArray(h.tensors) &&
    h.tensors.every(
      (e: Partial<HeaderEntry> | null) =>
        typeof e?.name === 'string' &&
        Array.isArray(e.shape) &&
        e.shape.every((d) => Number.isSafeInteger(d) && d >= 0) &&
        (e.dtype === 'float32' || e.dtype === 'int32') &&
        Number.isSafeInteger(e.offset) &&
        Number.isSafeInteger(e.length) &&
        e.length === e.shape.reduce((a, b) => a * b, 1),
    )
  );
}

/** Why the bytes of a checkpoint file cannot be used, or its contents. */
function parseCheckpoint(buf: Buffer): CheckpointContents | string {
  if (buf.subarray(0, MAGIC.length).toString('latin1') !== MAGIC) return 'not a facepipe checkpoint of this version';
  const start = MAGIC.length + DIGEST_BYTES + 4;
  if (buf.length < start) return 'truncated';
  const digest = buf.subarray(MAGIC.length, MAGIC.length + DIGEST_BYTES);
  if (
    !createHash('sha256')
      .update(buf.subarray(MAGIC.length + DIGEST_BYTES))
      .digest()
      .equals(digest)
  )
    return 'its bytes do not match its digest';
  const hlen = buf.readUInt32LE(MAGIC.length + DIGEST_BYTES);
  if (buf.length < start + hlen) return 'truncated header';
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(start, start + hlen).toString('utf8'));
  } catch {
    return 'unreadable header';
  }
  if (!isHeader(header)) return 'header of the wrong shape';
  const dataStart = start + hlen;
  const tensors: CheckpointTensor[] = [];
  for (const e of header.tensors) {
    const from = dataStart + e.offset;
    const bytes = e.length * 4;
    if (from + bytes > buf.length) return `tensor ${e.name} truncated`;
    // Copy: the file buffer's offset need not be 4-byte aligned.
    const raw = new Uint8Array(buf.subarray(from, from + bytes));
    const data = e.dtype === 'int32' ? new Int32Array(raw.buffer) : new Float32Array(raw.buffer);
    tensors.push({ name: e.name, shape: e.shape, dtype: e.dtype, data });
  }
  return { meta: header.meta, tensors };
}

/**
 * The checkpoint in `dir`, or undefined when there is none. A damaged one (digest mismatch, truncated, unreadable,
 * an older format) is removed and reads as none; `onDamaged` is told which file and why, so the stage can say it
 * restarts from scratch.
 */
export async function readCheckpoint(
  dir: string,
  file = CHECKPOINT_FILE,
  onDamaged: (message: string) => void = () => {},
): Promise<CheckpointContents | undefined> {
  const path = join(dir, file);
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const parsed = parseCheckpoint(buf);
  if (typeof parsed !== 'string') return parsed;
  await rm(path, { force: true });
  onDamaged(`checkpoint ${path} is damaged (${parsed}); removed it, training restarts from scratch`);
  return undefined;
}

export async function removeCheckpoint(dir: string, file = CHECKPOINT_FILE): Promise<void> {
  await rm(join(dir, file), { force: true });
}
