// One run at a time per workspace. The lock file names its holder; a second run waits and says who holds it.
// A lock whose process is gone (kill -9, power loss, a reboot) is stale and taken over; so is a malformed one.
// Plain files, no flock: flock does not exclude across the network mounts a shared workspace may live on. The
// lock is written to a temporary file and linked into place, which fails when a lock exists (also over NFS),
// so a lock file is never seen half-written.
import { linkSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { FacepipeError } from '../core/errors.js';
import { removeQuietly, tmpName, writeError } from '../core/fsutil.js';
import { isPlainObject } from '../core/objects.js';
import { identityOf, isValidPid, liveness } from '../core/procs.js';

export interface LockHolder {
  pid: number;
  host: string;
  command: string;
  startedAt: string;
  /** Field 22 of /proc/PID/stat: tells the holder from a later process that got the same pid. */
  procStart?: number;
  /** /proc/sys/kernel/random/boot_id when the lock was taken: a lock from before a reboot is stale. */
  bootId?: string;
  /** Random, so that releasing removes only our own lock. */
  token?: string;
}

export function describeHolder(h: LockHolder): string {
  return `pid ${h.pid} on ${h.host} (${h.command}, since ${h.startedAt})`;
}

/** Locks this process holds now: a lock naming our pid that is not among them was left by an earlier process. */
const held = new Set<string>();

type Read = { kind: 'holder'; holder: LockHolder; text: string } | { kind: 'bad'; text: string } | { kind: 'none' };

function isHolder(v: unknown): v is LockHolder {
  return (
    isPlainObject(v) &&
    isValidPid(v.pid) &&
    typeof v.host === 'string' &&
    v.host !== '' &&
    typeof v.command === 'string' &&
    typeof v.startedAt === 'string' &&
    (v.procStart === undefined || (typeof v.procStart === 'number' && Number.isSafeInteger(v.procStart))) &&
    (v.bootId === undefined || typeof v.bootId === 'string') &&
    (v.token === undefined || typeof v.token === 'string')
  );
}

function readLock(path: string): Read {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    throw new FacepipeError({
      code: 'bad-lock',
      message: `cannot read the workspace lock ${path}: ${(e as Error).message}`,
      hint: 'it must be a file; remove it if no facepipe runs in this workspace',
    });
  }
  try {
    const v: unknown = JSON.parse(text);
    if (isHolder(v)) return { kind: 'holder', holder: v, text };
  } catch {
    /* malformed: below */
  }
  return { kind: 'bad', text };
}

/** Why a lock on this host is stale, or undefined while its holder may still run. */
function staleness(path: string, h: LockHolder): string | undefined {
  if (h.pid === process.pid && !held.has(path)) return `it names this very process's pid ${h.pid} (pid reuse)`;
  const state = liveness({ host: h.host, boot: h.bootId, pid: h.pid, start: h.procStart });
  if (state === 'dead') return `its process (pid ${h.pid}) is gone`;
  return undefined;
}

export interface LockOptions {
  command: string;
  wait: boolean;
  onWait?: (holder: string) => void;
  /** Told when a stale or malformed lock is taken over, and why. */
  onTakeOver?: (why: string) => void;
  pollMs?: number;
  signal?: AbortSignal;
}

export async function acquireLock(path: string, o: LockOptions): Promise<() => void> {
  mkdirSync(dirname(path), { recursive: true });
  const self = identityOf();
  const me: LockHolder = {
    pid: process.pid,
    host: self.host,
    command: o.command,
    startedAt: new Date().toISOString(),
    procStart: self.start,
    bootId: self.boot,
    token: randomBytes(8).toString('hex'),
  };
  let told = false;
  let badSince: string | undefined;
  for (;;) {
    if (tryCreate(path, me)) {
      held.add(path);
      return () => release(path, me);
    }
    const got = readLock(path);
    if (got.kind === 'none') continue;
    if (got.kind === 'bad') {
      // A lock written by an older facepipe (create, then write) can be empty for a moment: look twice.
      if (badSince === got.text) {
        tryTakeOver(path, got.text);
        o.onTakeOver?.(`took over ${path}: it was malformed (${JSON.stringify(got.text.slice(0, 80))})`);
        badSince = undefined;
      } else {
        badSince = got.text;
        await sleep(50);
      }
      continue;
    }
    badSince = undefined;
    const holder = got.holder;
    const why = staleness(path, holder);
    if (why) {
      tryTakeOver(path, got.text);
      o.onTakeOver?.(`took over the stale lock of ${describeHolder(holder)}: ${why}`);
      continue;
    }
    if (!o.wait) {
      throw new FacepipeError({
        code: 'locked',
        message: `the workspace is in use by ${describeHolder(holder)}`,
        hint: 'wait for it to finish, or run again without --no-wait to queue behind it',
      });
    }
    if (!told) {
      o.onWait?.(describeHolder(holder));
      told = true;
    }
    if (o.signal?.aborted)
      throw new FacepipeError(
        { code: 'interrupted', message: 'interrupted while waiting for the workspace lock' },
        130,
      );
    await sleep(o.pollMs ?? 200);
  }
}

/** Write the lock beside its place, then link it in: link fails if a lock exists, and readers never see half. */
function tryCreate(path: string, me: LockHolder): boolean {
  const tmp = tmpName(path);
  try {
    writeFileSync(tmp, JSON.stringify(me));
  } catch (e) {
    removeQuietly(tmp);
    throw writeError(path, e);
  }
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return false;
  } finally {
    unlinkSync(tmp);
  }
}

function release(path: string, me: LockHolder): void {
  held.delete(path);
  const got = readLock(path);
  if (got.kind === 'holder' && got.holder.pid === me.pid && got.holder.token === me.token) {
    try {
      unlinkSync(path);
    } catch {
      /* gone */
    }
  }
}

/**
 * Move the stale file aside first, so that of two processes seeing it stale only one removes it. If what was
 * moved is not what was judged stale (another process took the lock over in between), put it back.
 */
function tryTakeOver(path: string, judged: string): void {
  const aside = tmpName(`${path}.stale`);
  try {
    renameSync(path, aside);
  } catch {
    return; // someone else took it over
  }
  let moved: string | undefined;
  try {
    moved = readFileSync(aside, 'utf8');
  } catch {
    /* unreadable: treat as what we judged */
  }
  if (moved !== undefined && moved !== judged) {
    try {
      linkSync(aside, path);
    } catch {
      /* a third process made a lock meanwhile: it wins */
    }
  }
  try {
    unlinkSync(aside);
  } catch {
    /* gone */
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
