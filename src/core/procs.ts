// Processes on this host, read from /proc (Linux): enough to tell a live process from a dead one, from a zombie
// (PID 1 in a container often never reaps), and from a new process that got the same pid (pid reuse), and to
// tell a reboot from a crash. Off Linux (no /proc) only kill(pid, 0) is left, which cannot see any of that.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** Who a process is: enough to find it again, and to be sure it is the same one. */
export interface ProcessIdentity {
  host: string;
  /** /proc/sys/kernel/random/boot_id: a new one after every reboot. */
  boot?: string;
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks after boot): a reused pid has a later start. */
  start?: number;
}

export interface ProcStat {
  pid: number;
  /** R, S, D, T, Z (zombie), X (dead), ... */
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  start: number;
}

const hasProc = existsSync('/proc/self/stat');

/** /proc/PID/stat, parsed; undefined when there is no such process (or no /proc). */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Field 2 is the command name in parentheses and may itself hold spaces and ')': split after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state), so field n is f[n - 3].
  return { pid, state: f[0], ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]), start: Number(f[19]) };
}

let boot: string | undefined | null = null;
export function bootId(): string | undefined {
  if (boot === null) {
    try {
      boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
    } catch {
      boot = undefined;
    }
  }
  return boot;
}

let btime: number | undefined | null = null;
/** When this host booted (ms since the epoch, from /proc/stat btime). */
export function bootTimeMs(): number | undefined {
  if (btime === null) {
    try {
      const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
      btime = m ? Number(m[1]) * 1000 : undefined;
    } catch {
      btime = undefined;
    }
  }
  return btime;
}

export function isValidPid(pid: unknown): pid is number {
  return typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 0;
}

function signalZero(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Is `pid` a running process (not a zombie), and, when `start` is given, the very process that had that
 * start time? A pid that /proc does not show (no /proc, or hidden by hidepid) falls back to kill(pid, 0).
 */
export function pidRunning(pid: number, start?: number): boolean {
  if (!isValidPid(pid)) return false;
  const st = hasProc ? procStat(pid) : undefined;
  if (!st) return signalZero(pid);
  if (st.state === 'Z' || st.state === 'X') return false;
  return start === undefined || st.start === start;
}

/** This process, or a child just started (pid), as an identity to write down. */
export function identityOf(pid: number = process.pid): ProcessIdentity {
  return { host: hostname(), boot: bootId(), pid, start: procStat(pid)?.start };
}

/**
 * Is the process an identity names still running? 'unknown' when it ran on another host (we cannot look);
 * 'dead' when this host rebooted since, or its pid is gone, a zombie or now another process.
 */
export function liveness(id: ProcessIdentity): 'alive' | 'dead' | 'unknown' {
  if (id.host !== hostname()) return 'unknown';
  const b = bootId();
  if (id.boot && b && id.boot !== b) return 'dead';
  return pidRunning(id.pid, id.start) ? 'alive' : 'dead';
}

/** Every process of a session, zombies left out (a session id is its leader's pid). */
export function sessionMembers(sid: number): ProcStat[] {
  if (!hasProc) return [];
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (st && st.session === sid && st.state !== 'Z' && st.state !== 'X') out.push(st);
  }
  return out;
}

/** Does the process's environment hold this exact `NAME=value`? (false when it cannot be read) */
export function hasEnv(pid: number, entry: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(entry);
  } catch {
    return false;
  }
}

/**
 * Kill every process of the session an identity's process led (it was started with setsid), if that session
 * still exists on this host: its leader is alive with the recorded start time, or gone while members remain (a
 * pid in use as a session id is never given to a new process), and `ours` holds for one of its processes (a
 * note in the workspace alone is not trusted to name what to kill). Resolves once none is left (at most ~2 s).
 */
export async function killSession(leader: ProcessIdentity, ours: (pid: number) => boolean): Promise<number[]> {
  if (leader.host !== hostname() || !hasProc) return [];
  const b = bootId();
  if (leader.boot && b && leader.boot !== b) return [];
  const head = procStat(leader.pid);
  if (head && head.state !== 'Z' && leader.start !== undefined && head.start !== leader.start) return [];
  const members = sessionMembers(leader.pid);
  if (!members.some((m) => ours(m.pid))) return [];
  for (const m of members) {
    for (const target of [-m.pgrp, m.pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  for (let i = 0; i < 100 && sessionMembers(leader.pid).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  return members.map((m) => m.pid);
}
