// Remove what no kept run references: stage records, store objects, stale scratch and temp folders.
// "Kept" runs are the run records under results/runs (all of them, or the newest N with --keep-last N),
// plus each experiment's latest state.
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FacepipeError } from '../../core/errors.js';
import { acquireLock } from '../../execute/lock.js';
import { Workspace } from '../../execute/workspace.js';
import type { StageRecord } from '../../execute/store.js';

export interface GcOptions {
  keepLast?: string;
  dryRun?: boolean;
  workspace?: string;
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

export function formatBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export async function gcCommand(o: GcOptions): Promise<number> {
  const ws = new Workspace(process.cwd());
  if (o.workspace) Object.assign(ws, new Workspace(o.workspace));
  const release = await acquireLock(ws.lockPath, {
    command: 'facepipe gc',
    wait: true,
    onWait: (h) => process.stderr.write(`waiting for the workspace lock held by ${h}\n`),
  });
  try {
    let freed = 0;
    let removed = 0;
    const rm = (p: string) => {
      freed += du(p);
      removed++;
      if (!o.dryRun) rmSync(p, { recursive: true, force: true });
    };
    const runs = existsSync(ws.runsDir) ? readdirSync(ws.runsDir).sort() : [];
    if (o.keepLast !== undefined && !/^\d+$/.test(o.keepLast))
      throw new FacepipeError({
        code: 'bad-value',
        file: 'command line',
        message: `--keep-last ${JSON.stringify(o.keepLast)}: expected a whole number of runs to keep`,
        hint: 'e.g. --keep-last 5',
      });
    const keep = o.keepLast !== undefined ? Math.min(runs.length, Number(o.keepLast)) : runs.length;
    const dropped = runs.slice(0, runs.length - keep);
    for (const r of dropped) rm(join(ws.runsDir, r));
    const keys = new Set<string>();
    for (const r of runs.slice(runs.length - keep)) {
      try {
        const rec = JSON.parse(readFileSync(join(ws.runsDir, r, 'run.json'), 'utf8')) as {
          stages?: Array<{ key?: string }>;
        };
        for (const s of rec.stages ?? []) if (s.key) keys.add(s.key);
      } catch {
        /* unreadable run record keeps nothing */
      }
    }
    const lastDir = join(ws.dot, 'state', 'last');
    if (existsSync(lastDir))
      for (const f of readdirSync(lastDir)) {
        try {
          for (const v of Object.values(
            JSON.parse(readFileSync(join(lastDir, f), 'utf8')) as Record<string, { key: string }>,
          ))
            keys.add(v.key);
        } catch {
          /* ignore */
        }
      }
    const liveObjects = new Set<string>();
    const recordsDir = ws.store.recordsDir;
    for (const f of existsSync(recordsDir) ? readdirSync(recordsDir) : []) {
      const key = f.replace(/\.json$/, '');
      if (!keys.has(key)) {
        rm(join(recordsDir, f));
        continue;
      }
      const rec = ws.store.readRecord(key);
      for (const out of Object.values(rec?.outputs ?? {})) {
        liveObjects.add(out.digest);
        if (out.type === 'dir') {
          try {
            for (const e of (await ws.store.readManifest(out.digest)).entries) liveObjects.add(e.digest);
          } catch {
            /* missing manifest: nothing to keep */
          }
        }
      }
    }
    const objects = ws.store.objectsDir;
    for (const d of existsSync(objects) ? readdirSync(objects) : []) {
      for (const f of readdirSync(join(objects, d))) if (!liveObjects.has(d + f)) rm(join(objects, d, f));
    }
    for (const d of existsSync(ws.workRoot) ? readdirSync(ws.workRoot) : []) if (!keys.has(d)) rm(join(ws.workRoot, d));
    if (existsSync(ws.tmpDir)) for (const d of readdirSync(ws.tmpDir)) rm(join(ws.tmpDir, d));
    process.stdout.write(
      `${o.dryRun ? 'would free' : 'freed'} ${formatBytes(freed)} (${removed} entries; ${dropped.length} old run records, kept ${keep} runs and ${keys.size} stage results)\n`,
    );
    return 0;
  } finally {
    release();
  }
}
