// Leases: a running job's note that it may still write into the workspace (its temp folder, its scratch folder,
// new store objects and its record), kept fresh by a heartbeat. Jobs on other hosts (Slurm) may outlive a killed
// runner, and gc runs under the workspace lock that jobs never take: gc leaves alone what a live lease covers.
// No flock (it does not exclude across network and FUSE mounts): a file per job, its mtime the heartbeat.
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isPlainObject } from '../core/objects.js';
import type { Workspace } from './workspace.js';

export const HEARTBEAT_MS = 30_000;
/** A lease not refreshed for this long belongs to a dead job (10 heartbeats: room for clock skew and slow NFS). */
export const STALE_MS = 10 * HEARTBEAT_MS;

export interface Lease {
  key: string;
  /** Absolute paths the job writes besides the store. */
  tmp: string;
  workDir: string;
  host: string;
  pid: number;
  /** ms since the epoch */
  started: number;
}

const leaseDir = (ws: Workspace) => join(ws.dot, 'live');

/** Take a lease for a job; returns the function that gives it back. The heartbeat never keeps a process alive. */
export function takeLease(ws: Workspace, l: Omit<Lease, 'host' | 'pid' | 'started'>): () => void {
  const lease: Lease = { ...l, host: hostname(), pid: process.pid, started: Date.now() };
  const path = join(leaseDir(ws), `${lease.host}-${lease.pid}-${lease.started}-${l.key.slice(0, 16)}.json`);
  mkdirSync(leaseDir(ws), { recursive: true });
  writeFileSync(path, JSON.stringify(lease));
  const beat = setInterval(() => {
    try {
      const now = new Date();
      utimesSync(path, now, now);
    } catch {
      /* removed by gc after a long pause: nothing to refresh */
    }
  }, HEARTBEAT_MS);
  beat.unref();
  return () => {
    clearInterval(beat);
    rmSync(path, { force: true });
  };
}

function isLease(v: unknown): v is Lease {
  return (
    isPlainObject(v) &&
    typeof v.key === 'string' &&
    typeof v.tmp === 'string' &&
    typeof v.workDir === 'string' &&
    typeof v.started === 'number'
  );
}

/** The leases still fresh; stale and unreadable ones are removed unless `dryRun`. */
export function liveLeases(ws: Workspace, o: { now?: number; dryRun?: boolean } = {}): Lease[] {
  const now = o.now ?? Date.now();
  const out: Lease[] = [];
  let names: string[];
  try {
    names = readdirSync(leaseDir(ws));
  } catch {
    return out;
  }
  for (const name of names) {
    const path = join(leaseDir(ws), name);
    let lease: unknown;
    let fresh = false;
    try {
      fresh = now - statSync(path).mtimeMs < STALE_MS;
      lease = JSON.parse(readFileSync(path, 'utf8'));
    } catch {
      // Being written right now (or damaged): a fresh file is kept as a lease of unknown extent.
      if (fresh) out.push({ key: '', tmp: '', workDir: '', host: '?', pid: 0, started: now - STALE_MS });
      else if (!o.dryRun) rmSync(path, { force: true });
      continue;
    }
    if (fresh && isLease(lease)) out.push(lease);
    else if (!fresh && !o.dryRun) rmSync(path, { force: true });
  }
  return out;
}
