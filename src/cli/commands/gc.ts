// facepipe gc: free cache space no kept run uses (the reachability walk is src/execute/store/gc.ts).
import { resolve } from 'node:path';
import { FacepipeError } from '../../core/errors.js';
import { acquireLock } from '../../execute/lock.js';
import { collectGarbage } from '../../execute/store/gc.js';
import { Workspace } from '../../execute/workspace.js';

export interface GcOptions {
  keepLast?: string;
  dryRun?: boolean;
  /** Remove every epoch state (runs with more epochs then train from epoch 0). */
  dropEpochStates?: boolean;
  workspace?: string;
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
  if (o.keepLast !== undefined && !/^\d+$/.test(o.keepLast))
    throw new FacepipeError({
      code: 'bad-value',
      file: 'command line',
      message: `--keep-last ${JSON.stringify(o.keepLast)}: expected a whole number of runs to keep`,
      hint: 'e.g. --keep-last 5',
    });
  const ws = new Workspace(resolve(o.workspace ?? process.cwd()));
  ws.assertConfined();
  if (!ws.storeIsLocal)
    ws.warn(
      `the store is ${ws.store.root} (FACEPIPE_STORE); gc keeps only what this workspace's runs use, so other workspaces sharing it may rerun stages`,
    );
  const release = await acquireLock(ws.lockPath, {
    command: 'facepipe gc',
    wait: true,
    onWait: (h) => process.stderr.write(`waiting for the workspace lock held by ${h}\n`),
  });
  try {
    const r = await collectGarbage(ws, {
      keepLast: o.keepLast !== undefined ? Number(o.keepLast) : undefined,
      dryRun: o.dryRun,
      dropEpochStates: o.dropEpochStates,
      warn: (m) => process.stderr.write(`warning: ${m}\n`),
    });
    process.stdout.write(
      `${o.dryRun ? 'would free' : 'freed'} ${formatBytes(r.freedBytes)} (${r.removedEntries} entries; ${r.droppedRuns} old run records, kept ${r.keptRuns} runs and ${r.keptStages} stage results)\n` +
        (r.keptEpochStates || r.droppedEpochStates
          ? `epoch states: kept ${r.keptEpochStates} (their stage results are kept), ${o.dryRun ? 'would remove' : 'removed'} ${r.droppedEpochStates}\n`
          : ''),
    );
    return 0;
  } finally {
    release();
  }
}
