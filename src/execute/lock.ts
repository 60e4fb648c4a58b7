// One run at a time per workspace. The lock file names its holder; a second run waits and says who holds it.
// A lock whose process is gone (kill -9, power loss) is stale and taken over.
import { mkdirSync, openSync, closeSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { FacepipeError } from '../core/errors.js';

export interface LockHolder {
  pid: number;
  host: string;
  command: string;
  startedAt: string;
}

export function describeHolder(h: LockHolder): string {
  return `pid ${h.pid} on ${h.host} (${h.command}, since ${h.startedAt})`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(path: string): LockHolder | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

export interface LockOptions {
  command: string;
  wait: boolean;
  onWait?: (holder: string) => void;
  pollMs?: number;
  signal?: AbortSignal;
}

export async function acquireLock(path: string, o: LockOptions): Promise<() => void> {
  mkdirSync(dirname(path), { recursive: true });
  const me: LockHolder = {
    pid: process.pid,
    host: hostname(),
    command: o.command,
    startedAt: new Date().toISOString(),
  };
  let told = false;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      return () => {
        const h = readHolder(path);
        if (h && h.pid === me.pid && h.startedAt === me.startedAt) {
          try {
            unlinkSync(path);
          } catch {
            /* gone */
          }
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = readHolder(path);
    if (!holder) {
      // Being written right now, or damaged: give the writer a moment, then treat as stale.
      await sleep(50);
      const again = readHolder(path);
      if (!again) {
        tryTakeOver(path);
        continue;
      }
      continue;
    }
    if (holder.host === me.host && !alive(holder.pid)) {
      tryTakeOver(path);
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

/** Move the stale file aside first, so that of two processes seeing it stale only one removes it. */
function tryTakeOver(path: string): void {
  const aside = `${path}.stale-${process.pid}`;
  try {
    renameSync(path, aside);
    unlinkSync(aside);
  } catch {
    /* someone else took it over */
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
