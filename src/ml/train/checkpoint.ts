// Epoch checkpoints: one file (magic, JSON header, raw tensor bytes), written to a temporary name,
// fsynced and renamed, so a killed process leaves either the previous or the new checkpoint.
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';

const MAGIC = 'FPCK1\n';
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
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.write(Buffer.from(MAGIC));
    await fh.write(len);
    await fh.write(header);
    for (const t of contents.tensors)
      await fh.write(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  return path;
}

/** The checkpoint in `dir`, or undefined when there is none. A damaged file is an error naming it. */
export async function readCheckpoint(dir: string, file = CHECKPOINT_FILE): Promise<CheckpointContents | undefined> {
  const path = join(dir, file);
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const bad = (why: string): never => {
    throw new Error(`checkpoint ${path} is damaged (${why}); delete it to restart training from scratch`);
  };
  if (buf.subarray(0, MAGIC.length).toString('latin1') !== MAGIC) bad('bad magic');
  if (buf.length < MAGIC.length + 4) bad('truncated');
  const hlen = buf.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  if (buf.length < start + hlen) bad('truncated header');
  let header: {
    meta: Record<string, unknown>;
    tensors: Array<{ name: string; shape: number[]; dtype: 'float32' | 'int32'; offset: number; length: number }>;
  };
  try {
    header = JSON.parse(buf.subarray(start, start + hlen).toString('utf8')) as typeof header;
  } catch {
    return bad('unreadable header');
  }
  const dataStart = start + hlen;
  const tensors = header.tensors.map((e) => {
    const from = dataStart + e.offset;
    const bytes = e.length * 4;
    if (from + bytes > buf.length) bad(`tensor ${e.name} truncated`);
    // Copy: the file buffer's offset need not be 4-byte aligned.
    const raw = new Uint8Array(buf.subarray(from, from + bytes));
    const data = e.dtype === 'int32' ? new Int32Array(raw.buffer) : new Float32Array(raw.buffer);
    return { name: e.name, shape: e.shape, dtype: e.dtype, data };
  });
  return { meta: header.meta, tensors };
}

export async function removeCheckpoint(dir: string, file = CHECKPOINT_FILE): Promise<void> {
  await rm(join(dir, file), { force: true });
}
