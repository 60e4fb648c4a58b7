// Crash-safe file writing and workspace confinement.
import { closeSync, fsyncSync, openSync, renameSync, writeSync, mkdirSync, realpathSync, existsSync } from 'node:fs';
import { lstatSync, readlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { fail } from './errors.js';

export function tmpName(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/**
 * Write to a temporary name and rename into place: readers see old or new, never half. With durable (the
 * default) the data and the directory are fsynced too, so the write survives a power cut; commit points need
 * that, progress notes do not.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, opts: { durable?: boolean } = {}): void {
  const durable = opts.durable ?? true;
  const tmp = tmpName(path);
  let fd: number;
  try {
    fd = openSync(tmp, 'w');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(dirname(path), { recursive: true });
    fd = openSync(tmp, 'w');
  }
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  if (durable) fsyncDir(dirname(path));
}

export function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* some filesystems refuse directory fsync; the rename is still atomic */
  }
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
  if (isAbsolute(rel))
    fail(
      'unsafe-path',
      `${what} ${JSON.stringify(rel)} is an absolute path; facepipe writes only inside the workspace`,
      { hint: 'use a path relative to the workspace' },
    );
  const abs = resolve(workspace, rel);
  if (!isInside(workspace, abs))
    fail('unsafe-path', `${what} ${JSON.stringify(rel)} leads out of the workspace`, { hint: 'remove the ".." parts' });
  return resolveInside(workspace, abs, what, rel);
}

/**
 * `abs` (inside `root`) must stay inside root once the symlinks of its existing part are followed: a symlinked
 * folder on the way that leads out of root is refused.
 */
export function resolveInside(root: string, abs: string, what: string, shown = abs): string {
  if (!isInside(root, abs)) fail('unsafe-path', `${what} ${JSON.stringify(shown)} is not inside ${root}`);
  if (!existsSync(root)) return abs; // created as a plain folder on first write
  let probe = abs;
  while (!lexists(probe) && probe !== root) probe = dirname(probe);
  let real: string | undefined;
  try {
    real = realpathSync(probe);
  } catch {
    /* a dangling symlink: refused below, since it is not known where it leads */
  }
  if (real === undefined || !isInside(realpathSync(root), real))
    fail(
      'unsafe-path',
      `${what} ${JSON.stringify(shown)} goes through a symlink out of ${shown === abs ? root : 'the workspace'} (${probe} -> ${real ?? `${readlinkSync(probe)}, dangling`})`,
      { hint: 'remove the symlink or point it inside the workspace; to keep the store elsewhere, set FACEPIPE_STORE' },
    );
  return abs;
}

function lexists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** A path as shown to the user: relative to the workspace when inside it, else as given. */
export function displayPath(workspace: string, p: string): string {
  const rel = relative(workspace, p);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
}
