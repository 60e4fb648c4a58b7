// Resume after a killed runner: the jobs it left running are found and adopted, not submitted again. A job is
// adopted only when Slurm lists it, alive, under the tag of a run this workspace's ledger names, with a stage
// key as its comment that agrees with the ledger (job ids restart after a cluster restart: the id alone proves
// nothing). One squeue call covers every such run.
import { basename, join } from 'node:path';
import { CANARY_COMMENT } from './canary.js';
import type { SlurmClient } from './client.js';
import { closeRun, openRuns, outstanding, readLedger } from './ledger.js';
import { isFinal, type JobSnapshot } from './types.js';

export interface Adoptable {
  id: string;
  runId: string;
  tag: string;
  key: string;
  log: string;
  report: string;
  /** The stage id the job was submitted for. */
  stage?: string;
  state: string;
  node?: string;
  /** ms since the epoch, from the ledger (0 when the runner died before noting it). */
  submittedAt: number;
}

const KEY = /^[0-9a-f]{64}$/;

/** squeue for many tags, a bounded number per call (the list goes on one command line). */
async function queueOf(client: SlurmClient, tags: string[]): Promise<Map<string, JobSnapshot>> {
  const rows = new Map<string, JobSnapshot>();
  for (let i = 0; i < tags.length; i += 50)
    for (const [id, row] of await client.queue(tags.slice(i, i + 50))) rows.set(id, row);
  return rows;
}

/**
 * The live jobs of this workspace's earlier runs, by stage key (at most one per key; any other is `extra`).
 * Runs none of whose jobs is alive are marked closed, so later runs do not ask about them again.
 */
export async function findAdoptable(
  client: SlurmClient,
  workspace: string,
  currentRun: string,
  warn: (m: string) => void,
): Promise<{ byKey: Map<string, Adoptable>; extra: Adoptable[]; tags: string[] }> {
  const byKey = new Map<string, Adoptable>();
  const extra: Adoptable[] = [];
  const runs = openRuns(workspace).filter((r) => r.runId !== currentRun);
  if (!runs.length) return { byKey, extra, tags: [] };
  const rows = await queueOf(
    client,
    runs.map((r) => r.tag),
  );
  const tags: string[] = [];
  for (const run of runs) {
    const submitted = outstanding(readLedger(run.dir, run.runId, warn));
    const live = [...rows.values()].filter((j) => j.name === run.tag && !isFinal(j.state));
    const stages = live.filter((j) => j.comment !== CANARY_COMMENT);
    if (!live.length) {
      closeRun(run.dir);
      continue;
    }
    tags.push(run.tag);
    for (const j of stages) {
      const noted = submitted.get(j.id);
      const key = j.comment ?? '';
      if (!KEY.test(key) || (noted && noted.key !== key)) {
        warn(
          `Slurm job ${j.id} (${run.tag}) does not match what this workspace recorded (comment ${JSON.stringify(key)}, ` +
            `ledger key ${noted?.key ?? 'none'}): left alone`,
        );
        continue;
      }
      // A job missing from the ledger was submitted just before the runner died: Slurm's tag and key suffice.
      const log = noted?.log ?? j.stdout ?? join(run.dir, `unknown.${j.id}.log`);
      const a: Adoptable = {
        id: j.id,
        runId: run.runId,
        tag: run.tag,
        key,
        log,
        report: noted?.report ?? join(run.dir, basename(log).replace(/\.log$/, '') + '.report.json'),
        stage: noted?.stage,
        state: j.state,
        node: j.node,
        submittedAt: noted?.at ?? 0,
      };
      if (byKey.has(key)) extra.push(a);
      else byKey.set(key, a);
    }
  }
  return { byKey, extra, tags };
}
