// Temporary files and folders that dead writers left behind (kill -9, a power cut, a full disk), swept at the
// start of every run (under the workspace lock) and by gc. Only a dead writer's, never a live job's: a Slurm job
// on another host may be writing into a shared workspace right now. The rule:
//   - a name from tmpName (`<file>.tmp-<pid>-<host tag>-<random>`) with this host's tag is removed when that pid
//     no longer runs here (gone, or a zombie), or when the file was last written before this host booted;
//   - a job's output folder (.facepipe/tmp/<run>-<stage>/) holds an owner note (host, boot id, pid, start
//     time): removed when that process is dead on this host;
//   - anything else (another host's tag or note, a name without a host from an older facepipe, a folder
//     without a note) only once untouched for MAX_AGE_MS: a writer that has written nothing for that long is
//     taken to be dead, wherever it ran.
// Only these places are looked at, never inside outputs, store objects' contents or a stage's own files.
import { readdirSync, readFileSync, rmSync, lstatSync, writeFileSync, type Dirent, type Stats } from 'node:fs';
import { join } from 'node:path';
import { hostTag, parseTmpName, writeError } from '../core/fsutil.js';
import { bootTimeMs, identityOf, isValidPid, liveness, pidRunning, type ProcessIdentity } from '../core/procs.js';
import type { Workspace } from './workspace.js';

/** Two weeks: longer than a Slurm job runs on most clusters, far longer than any write takes. */
export const MAX_AGE_MS = 14 * 24 * 3600 * 1000;

/** In a job's output folder: who writes there. Output names cannot start with '.', so it never collides. */
export const JOB_OWNER_FILE = '.facepipe-owner.json';

/** Note this process as the writer of a job's output folder. */
export function writeJobOwner(dir: string): void {
  const path = join(dir, JOB_OWNER_FILE);
  try {
    writeFileSync(path, JSON.stringify(identityOf()));
  } catch (e) {
    throw writeError(path, e);
  }
}

/** The older epoch-checkpoint temporary names, `<file>.fpck.<pid>.tmp`, without a host. */
const LEGACY_PID_TMP = /\.fpck\.\d+\.tmp$/;

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Entries with their types: a run stats only temporary names, not every object and run folder it passes. */
function entries(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

function statOf(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/** The newest mtime in a folder (a job still filling it keeps it fresh), or of the file itself. */
function newestMtime(p: string, st: Stats, depth = 0): number {
  if (!st.isDirectory() || depth > 6) return st.mtimeMs;
  let t = st.mtimeMs;
  for (const n of list(p)) {
    const s = statOf(join(p, n));
    if (s) t = Math.max(t, newestMtime(join(p, n), s, depth + 1));
  }
  return t;
}

export interface SweepResult {
  removed: string[];
}

export interface SweepOptions {
  now?: number;
  /** How to remove an entry (gc counts and may only pretend); default rm -rf. */
  remove?: (path: string) => void;
  /** Also inside every past run's folder of results/runs/ (gc), not only results/runs/ itself. */
  deep?: boolean;
}

class LeftoverSweep {
  readonly removed: string[] = [];
  private readonly tag = hostTag();
  private readonly booted = bootTimeMs();
  private readonly now: number;
  constructor(private readonly o: SweepOptions) {
    this.now = o.now ?? Date.now();
  }

  private old(p: string, st: Stats): boolean {
    return this.now - newestMtime(p, st) > MAX_AGE_MS;
  }

  private remove(p: string): void {
    try {
      if (this.o.remove) this.o.remove(p);
      else rmSync(p, { recursive: true, force: true });
      this.removed.push(p);
    } catch {
      /* in use or not ours to remove: left for next time */
    }
  }

  /** A temporary file or folder named by its writer: is that writer dead? */
  private writerDead(p: string, name: string, st: Stats): boolean {
    const t = parseTmpName(name);
    if (t && t.host === this.tag) {
      if (this.booted !== undefined && st.mtimeMs < this.booted) return true;
      return !pidRunning(t.pid);
    }
    return this.old(p, st);
  }

  /** Temporary names among the entries of dir (and, `depth` levels down, of its folders but `skip`). */
  scan(dir: string, depth = 0, skip?: string): void {
    for (const e of entries(dir)) {
      const p = join(dir, e.name);
      if (parseTmpName(e.name) || LEGACY_PID_TMP.test(e.name)) {
        const st = statOf(p);
        if (st && this.writerDead(p, e.name, st)) this.remove(p);
      } else if (depth > 0 && e.isDirectory() && p !== skip) this.scan(p, depth - 1, skip);
    }
  }

  /** .facepipe/tmp/<job>/: by the job's owner note. */
  jobFolders(dir: string): void {
    for (const name of list(dir)) {
      const p = join(dir, name);
      const st = statOf(p);
      if (!st) continue;
      if (!st.isDirectory()) {
        if (this.writerDead(p, name, st)) this.remove(p);
        continue;
      }
      let owner: Partial<ProcessIdentity> | undefined;
      try {
        owner = JSON.parse(readFileSync(join(p, JOB_OWNER_FILE), 'utf8')) as Partial<ProcessIdentity>;
      } catch {
        owner = undefined;
      }
      const known = owner && isValidPid(owner.pid) && typeof owner.host === 'string';
      const state = known ? liveness(owner as ProcessIdentity) : 'unknown';
      if (state === 'dead' || (state === 'unknown' && this.old(p, st))) this.remove(p);
    }
  }
}

/** Sweep a workspace; returns what was removed (absolute paths). */
export function sweepLeftovers(ws: Workspace, o: SweepOptions = {}): SweepResult {
  const s = new LeftoverSweep(o);
  s.scan(ws.dot); // the lock's temporary names
  s.scan(join(ws.dot, 'state'), 3);
  s.scan(ws.store.recordsDir);
  s.scan(ws.store.objectsDir, 1);
  s.scan(ws.store.epochsDir, 1); // epoch state records, <prefix>/<epoch>.json
  s.scan(ws.workRoot, 4); // checkpoints, written by tmpName inside each key's scratch
  s.jobFolders(ws.tmpDir);
  // results/<exp>/experiment.json and results/<exp>/<stage>/<output> being restored. A run record's temporary file
  // sits in results/runs/ itself (run-record.ts), so a run lists that one folder instead of opening every past
  // run's, which grow without bound; `deep` (gc) looks inside each too, for the names an older facepipe left there.
  s.scan(ws.resultsDir, 2, o.deep ? undefined : ws.runsDir);
  if (!o.deep) s.scan(ws.runsDir);
  return { removed: s.removed };
}
