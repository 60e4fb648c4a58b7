// Crash-safe file writing and workspace confinement.
import { closeSync, fsyncSync, openSync, renameSync, writeSync, mkdirSync, realpathSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { fail } from './errors.js';

export function tmpName(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Write to a temporary name, fsync, rename into place, fsync the directory: readers see old or new, never half. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tmpName(path);
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
  } catch { /* some filesystems refuse directory fsync; the rename is still atomic */ }
}

export function isInside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel));
}

/**
 * Resolve a path the pipeline names for writing; refuse absolute paths and `..` escapes, and refuse a
 * destination whose existing parent is a symlink leading out of the workspace.
 */
export function resolveForWrite(workspace: string, rel: string, what: string): string {
  if (isAbsolute(rel)) fail('unsafe-path', `${what} ${JSON.stringify(rel)} is an absolute path; facepipe writes only inside the workspace`, { hint: 'use a path relative to the workspace' });
  const abs = resolve(workspace, rel);
  if (!isInside(workspace, abs)) fail('unsafe-path', `${what} ${JSON.stringify(rel)} leads out of the workspace`, { hint: 'remove the ".." parts' });
  let probe = abs;
  while (!existsSync(probe) && probe !== workspace) probe = dirname(probe);
  const real = realpathSync(probe);
  if (!isInside(realpathSync(workspace), real)) fail('unsafe-path', `${what} ${JSON.stringify(rel)} goes through a symlink out of the workspace (${probe} -> ${real})`, { hint: 'remove the symlink or point it inside the workspace' });
  return abs;
}
