// Garbage collection of the workspace's cache: what no kept run record and no experiment's last state
// references goes (stage records, store objects, stale scratch and temp folders). An epoch state (epoch-prefix
// reuse) stays while the stage result that left it does; `dropEpochStates` removes them all. "Kept" runs are the run
// records under results/runs: all of them, or the newest N. Executors name what they keep that may go too (the
// Slurm folders of closed runs that are not kept). What a live job may still write (its temp and
// scratch folders, temp object files, objects and records newer than the oldest live lease) is kept.
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { executorGarbage } from '../executors/registry.js';
import { sweepLeftovers } from '../leftovers.js';
import { allLastStates } from '../last-state.js';
import { liveLeases, type Lease } from '../leases.js';
import type { Workspace } from '../workspace.js';

export interface GcResult {
  freedBytes: number;
  removedEntries: number;
  /** Epoch states kept (their stage results are kept) and removed. */
  keptEpochStates: number;
  droppedEpochStates: number;
  droppedRuns: number;
  keptRuns: number;
  keptStages: number;
}

function du(p: string): number {
  try {
    const st = statSync(p);
    if (!st.isDirectory()) return st.size;
    return readdirSync(p).reduce((n, f) => n + du(join(p, f)), 0);
  } catch {
    return 0;
  }
}

/** Stage keys referenced by the kept run records and by every experiment's last state. */
function liveKeys(ws: Workspace, keptRuns: string[], warn: (m: string) => void): Set<string> {
  const keys = new Set<string>();
  for (const r of keptRuns) {
    try {
      const rec = JSON.parse(readFileSync(join(ws.runsDir, r, 'run.json'), 'utf8')) as {
        stages?: Array<{ key?: unknown }>;
      };
      for (const s of Array.isArray(rec.stages) ? rec.stages : []) if (typeof s?.key === 'string') keys.add(s.key);
    } catch {
      /* an unreadable run record keeps nothing */
    }
  }
  for (const last of allLastStates(ws, warn)) for (const v of Object.values(last)) keys.add(v.key);
  return keys;
}

/** What live jobs may still write: a store file is theirs when it is a temp file or newer than the oldest lease. */
function jobsMayWrite(leases: Lease[]): (path: string) => boolean {
  if (!leases.length) return () => false;
  const since = Math.min(...leases.map((l) => l.started)) - 60_000;
  return (path) => {
    if (/\.tmp-\d+-[0-9a-f]+$/.test(path)) return true;
    try {
      return statSync(path).mtimeMs >= since;
    } catch {
      return false;
    }
  };
}

/** Objects the live stage records reference (a folder's manifest and every file in it). */
async function liveObjects(
  ws: Workspace,
  keys: Set<string>,
  remove: (p: string) => void,
  busy: (p: string) => boolean,
): Promise<Set<string>> {
  const live = new Set<string>();
  const recordsDir = ws.store.recordsDir;
  for (const f of existsSync(recordsDir) ? readdirSync(recordsDir) : []) {
    const key = f.replace(/\.json$/, '');
    if (!keys.has(key)) {
      if (!busy(join(recordsDir, f))) remove(join(recordsDir, f));
      continue;
    }
    for (const out of Object.values(ws.store.readRecord(key)?.outputs ?? {})) {
      live.add(out.digest);
      if (out.type !== 'dir') continue;
      try {
        for (const e of (await ws.store.readManifest(out.digest)).entries) live.add(e.digest);
      } catch {
        /* a missing manifest: nothing more to keep */
      }
    }
  }
  return live;
}

/** Epoch states whose stage result is kept stay, with their objects; the others (and damaged ones) go. */
async function liveEpochStates(
  ws: Workspace,
  keys: Set<string>,
  live: Set<string>,
  o: { drop: boolean; dryRun?: boolean; busy: (p: string) => boolean; count: (p: string) => void },
): Promise<{ kept: number; dropped: number }> {
  let kept = 0;
  let dropped = 0;
  for (const { file, record } of ws.store.allEpochStates()) {
    if (o.busy(file)) continue;
    if (record && keys.has(record.key) && !o.drop) {
      kept++;
      live.add(record.state.digest);
      try {
        for (const e of (await ws.store.readManifest(record.state.digest)).entries) live.add(e.digest);
      } catch {
        /* a missing manifest: nothing more to keep */
      }
      continue;
    }
    dropped++;
    o.count(file);
    if (!o.dryRun) ws.store.removeEpochState(file);
  }
  return { kept, dropped };
}

export async function collectGarbage(
  ws: Workspace,
  o: { keepLast?: number; dryRun?: boolean; dropEpochStates?: boolean; warn?: (m: string) => void },
): Promise<GcResult> {
  let freedBytes = 0;
  let removedEntries = 0;
  const remove = (p: string) => {
    freedBytes += du(p);
    removedEntries++;
    if (!o.dryRun) rmSync(p, { recursive: true, force: true });
  };
  // Run folders only: a run being recorded has its temporary file beside them (run-record.ts).
  const runs = existsSync(ws.runsDir)
    ? readdirSync(ws.runsDir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name)
        .sort()
    : [];
  const keep = o.keepLast !== undefined ? Math.min(runs.length, o.keepLast) : runs.length;
  const dropped = runs.slice(0, runs.length - keep);
  for (const r of dropped) remove(join(ws.runsDir, r));
  const kept = runs.slice(runs.length - keep);
  const keys = liveKeys(ws, kept, o.warn ?? (() => {}));
  const leases = liveLeases(ws, { dryRun: o.dryRun });
  const busy = jobsMayWrite(leases);
  // A lease still being written names no folders: then no temp or scratch folder goes.
  const leased = (p: string) => leases.some((l) => !l.tmp || l.tmp === p || l.workDir === p);
  const live = await liveObjects(ws, keys, remove, busy);
  const states = await liveEpochStates(ws, keys, live, {
    drop: !!o.dropEpochStates,
    dryRun: o.dryRun,
    busy,
    count: (p) => {
      freedBytes += du(p);
      removedEntries++;
    },
  });
  const objects = ws.store.objectsDir;
  for (const d of existsSync(objects) ? readdirSync(objects) : []) {
    for (const f of readdirSync(join(objects, d)))
      if (!live.has(d + f) && !busy(join(objects, d, f))) remove(join(objects, d, f));
  }
  for (const d of existsSync(ws.workRoot) ? readdirSync(ws.workRoot) : [])
    if (!keys.has(d) && !leased(join(ws.workRoot, d))) remove(join(ws.workRoot, d));
  if (existsSync(ws.tmpDir))
    for (const d of readdirSync(ws.tmpDir)) if (!leased(join(ws.tmpDir, d))) remove(join(ws.tmpDir, d));
  for (const p of await executorGarbage(ws.root, new Set(kept))) remove(p);
  // The runner's own temporary files elsewhere (state, run records, results), of dead writers only.
  sweepLeftovers(ws, {
    deep: true,
    remove: (p) => {
      if (existsSync(p) && !leased(p) && !busy(p)) remove(p);
    },
  });
  return {
    freedBytes,
    removedEntries,
    keptEpochStates: states.kept,
    droppedEpochStates: states.dropped,
    droppedRuns: dropped.length,
    keptRuns: keep,
    keptStages: keys.size,
  };
}
