// Crash-safe file writing and workspace confinement.
import {
  closeSync,
  fsyncSync,
  openSync,
  renameSync,
  writeSync,
  mkdirSync,
  realpathSync,
  existsSync,
  unlinkSync,
  ftruncateSync,
  fstatSync,
  lstatSync,
  readlinkSync,
} from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { FacepipeError, fail } from './errors.js';

/** 8 hex digits naming this host in temporary names, so that a sweep can tell its own leftovers from others'. */
export function hostTag(): string {
  return (cachedTag ??= createHash('sha256').update(hostname()).digest('hex').slice(0, 8));
}
let cachedTag: string | undefined;

/**
 * `<path>.tmp-<pid>-<host tag>-<random>`: the writer's pid and host are in the name, so temporary files left
 * by a writer that died can be found and removed, and only those (src/execute/leftovers.ts).
 */
export function tmpName(path: string): string {
  return `${path}.tmp-${process.pid}-${hostTag()}-${randomBytes(4).toString('hex')}`;
}

/** The writer of a temporary name from tmpName; no host for the older `.tmp-<pid>-<random>` names. */
export function parseTmpName(name: string): { pid: number; host?: string } | undefined {
  const m = /\.tmp-(\d+)-([0-9a-f]{8})(?:-([0-9a-f]{8}))?$/.exec(name);
  if (!m) return undefined;
  return m[3] ? { pid: Number(m[1]), host: m[2] } : { pid: Number(m[1]) };
}

const NO_SPACE: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large for this filesystem or the file size limit (ulimit -f)',
};

/** Is this error the disk (or a quota, or a size limit) being full? */
export function isNoSpace(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && code in NO_SPACE;
}

/**
 * A write that failed, as an error naming the file (Node's own ENOSPC message names none). Exit code 1: the
 * input was fine, the machine could not take it. Errors already ours pass through.
 */
export function writeError(path: string, e: unknown): Error {
  if (e instanceof FacepipeError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = typeof err?.code === 'string' ? err.code : undefined;
  const shown = displayPath(process.cwd(), path);
  if (code && code in NO_SPACE)
    return new FacepipeError(
      {
        code: 'disk-full',
        message: `cannot write ${shown}: ${NO_SPACE[code]} (${code})`,
        hint: `free space on the filesystem that holds ${dirname(shown)} (df -h shows it), then run again: completed stages are kept`,
      },
      1,
    );
  return new FacepipeError(
    {
      code: 'write-failed',
      message: `cannot write ${shown}: ${err?.message ?? String(e)}`,
      hint: 'check that the folder exists and is writable',
    },
    1,
  );
}

/**
 * Write to a temporary name and rename into place: readers see old or new, never half. With durable (the
 * default) the data and the directory are fsynced too, so the write survives a power cut; commit points need
 * that, progress notes do not. A failed write removes its temporary file and throws writeError (naming path).
 * `tmpAt` names the temporary file after another path of the same filesystem (default: path itself), e.g. in a
 * folder that the leftover sweep lists anyway.
 */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  opts: { durable?: boolean; tmpAt?: string } = {},
): void {
  const durable = opts.durable ?? true;
  const tmp = tmpName(opts.tmpAt ?? path);
  let fd: number | undefined;
  try {
    try {
      fd = openSync(tmp, 'w');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      mkdirSync(dirname(path), { recursive: true });
      mkdirSync(dirname(tmp), { recursive: true });
      fd = openSync(tmp, 'w');
    }
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      if (durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) removeQuietly(tmp);
    throw writeError(path, e);
  }
  if (durable) fsyncDir(dirname(path));
}

/**
 * Last resort when the disk is full: overwrite an existing file in place, in the blocks it already has (no new
 * space needed on ext4, xfs or tmpfs), then cut it to length. Not atomic, so only for notes such as a run
 * record, never for a commit point. Returns false when the file is missing or the text is longer than it.
 */
export function overwriteInPlace(path: string, text: string): boolean {
  const data = Buffer.from(text);
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch {
    return false;
  }
  try {
    if (fstatSync(fd).size < data.length) return false;
    writeSync(fd, data, 0, data.length, 0);
    ftruncateSync(fd, data.length);
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

export function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
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
    // The native realpath is one system call; the JS one stats each component (this runs for every output).
    real = realpathSync.native(probe);
  } catch {
    /* a dangling symlink: refused below, since it is not known where it leads */
  }
  if (real === undefined || !isInside(realRoot(root), real))
    fail(
      'unsafe-path',
      `${what} ${JSON.stringify(shown)} goes through a symlink out of ${shown === abs ? root : 'the workspace'} (${probe} -> ${real ?? `${readlinkSync(probe)}, dangling`})`,
      { hint: 'remove the symlink or point it inside the workspace; to keep the store elsewhere, set FACEPIPE_STORE' },
    );
  return abs;
}

/** A workspace root's real path, asked once per process (a root that moves mid-run is not a case to serve). */
const realRoots = new Map<string, string>();
function realRoot(root: string): string {
  let r = realRoots.get(root);
  if (r === undefined) realRoots.set(root, (r = realpathSync.native(root)));
  return r;
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
