// What `facepipe status` and `facepipe doctor` say about Slurm: the workspace's jobs still queued or running
// (from its ledgers and one squeue call), and whether Slurm answers at all (sinfo).
import type { ExecutorCheck } from '../registry.js';
import { CANARY_COMMENT } from './canary.js';
import { SlurmClient } from './client.js';
import { openRuns, readLedger, type Submitted } from './ledger.js';
import { isFinal, type JobSnapshot } from './types.js';

export async function slurmCheck(client = new SlurmClient({ timeoutMs: 10_000 })): Promise<ExecutorCheck> {
  const r = await client.reachable();
  if (!r.ok) return { ok: false, summary: `not reachable (only --executor slurm needs it): ${r.error}`, hint: r.hint };
  const details = r.info.partitions.map(
    (p) =>
      `partition ${p.name}${p.isDefault ? ' (default)' : ''}: ${p.available ? 'up' : 'down'}, ${p.nodes} node(s) ` +
      `${p.states.join('/')}${p.gres.length ? `, ${p.gres.join(',')}` : ''}`,
  );
  return { ok: true, summary: `reachable (Slurm ${r.info.version}, sinfo answered)`, details };
}

/** Lines for `facepipe status`: one per live job of the workspace; [] when it has none (or never used Slurm). */
export async function describeWorkspaceJobs(
  workspace: string,
  client = new SlurmClient({ timeoutMs: 10_000 }),
): Promise<string[]> {
  const runs = openRuns(workspace);
  if (!runs.length) return [];
  let rows: Map<string, JobSnapshot>;
  try {
    rows = new Map();
    for (let i = 0; i < runs.length; i += 50)
      for (const [id, j] of await client.queue(runs.slice(i, i + 50).map((r) => r.tag))) rows.set(id, j);
  } catch (e) {
    return [`slurm: cannot list this workspace's jobs: ${(e as Error).message}`];
  }
  const lines: string[] = [];
  let running = 0;
  for (const run of runs) {
    const noted = new Map(
      readLedger(run.dir, run.runId, () => {})
        .filter((l): l is Submitted => l.event === 'submitted')
        .map((l) => [l.id, l]),
    );
    for (const j of [...rows.values()].filter((x) => x.name === run.tag && !isFinal(x.state))) {
      if (j.state === 'RUNNING') running++;
      const where = j.state === 'PENDING' ? `(${j.reason ?? 'waiting'})` : (j.node ?? '');
      const stage =
        noted.get(j.id)?.stage ??
        (j.comment === CANARY_COMMENT ? 'canary' : j.comment ? `key ${j.comment.slice(0, 12)}` : '?');
      lines.push(`  ${j.id.padEnd(8)} ${j.state.padEnd(10)} ${where.padEnd(22)} ${stage}  (run ${run.runId})`);
    }
  }
  if (!lines.length) return [];
  return [`slurm jobs of this workspace: ${running} running, ${lines.length - running} queued or ending`, ...lines];
}
