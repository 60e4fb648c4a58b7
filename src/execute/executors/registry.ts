// The executors, by name: an explicit map, each loaded only when chosen. Besides building one, an executor may
// say whether this machine can use it (facepipe doctor) and which of its jobs of a workspace are still queued or
// running (facepipe status), and which of the files it keeps in a workspace gc may remove.
import type { Executor, ExecutorContext } from '../../contracts/executor.js';

export interface ExecutorCheck {
  ok: boolean;
  /** One line: what was found, or what is missing. */
  summary: string;
  details?: string[];
  hint?: string;
}

interface Entry {
  create(ctx: ExecutorContext): Promise<Executor>;
  check?(): Promise<ExecutorCheck>;
  /** Lines describing the workspace's live jobs; [] when there are none. */
  jobs?(workspace: string): Promise<string[]>;
  /** Paths it keeps in the workspace that no live job and no kept run (by run id) needs any more. */
  garbage?(workspace: string, keptRuns: ReadonlySet<string>): Promise<string[]>;
}

const EXECUTORS: Record<string, Entry> = {
  local: { create: async () => new (await import('./local/local-executor.js')).LocalExecutor() },
  slurm: {
    create: async (ctx) => new (await import('./slurm/slurm-executor.js')).SlurmExecutor(ctx),
    check: async () => (await import('./slurm/workspace-jobs.js')).slurmCheck(),
    jobs: async (ws) => (await import('./slurm/workspace-jobs.js')).describeWorkspaceJobs(ws),
    garbage: async (ws, kept) => (await import('./slurm/ledger.js')).closedRunDirs(ws, kept),
  },
};

export const EXECUTOR_NAMES = Object.keys(EXECUTORS);

export async function createExecutor(name: string, ctx: ExecutorContext): Promise<Executor> {
  const entry = EXECUTORS[name];
  if (!entry) throw new Error(`unknown executor '${name}' (executors: ${EXECUTOR_NAMES.join(', ')})`);
  return entry.create(ctx);
}

/** What each executor that can be checked says about this machine. */
export async function checkExecutors(): Promise<Array<{ name: string } & ExecutorCheck>> {
  const out: Array<{ name: string } & ExecutorCheck> = [];
  for (const [name, e] of Object.entries(EXECUTORS)) if (e.check) out.push({ name, ...(await e.check()) });
  return out;
}

/** Live jobs of the workspace, from every executor that keeps some outside this process. */
export async function workspaceJobs(workspace: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of Object.values(EXECUTORS)) if (e.jobs) out.push(...(await e.jobs(workspace)));
  return out;
}

/** What every executor says gc may remove from the workspace. */
export async function executorGarbage(workspace: string, keptRuns: ReadonlySet<string>): Promise<string[]> {
  const out: string[] = [];
  for (const e of Object.values(EXECUTORS)) if (e.garbage) out.push(...(await e.garbage(workspace, keptRuns)));
  return out;
}
