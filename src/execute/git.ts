// The git commit of the workspace for the run record: which code and configs made these figures, and whether
// tracked files had uncommitted changes. Asked once per run, in the background; a workspace outside git (or
// a machine without git) records null.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface GitState {
  commit: string;
  /** Tracked files differ from the commit (untracked files do not count: results/ often is one). */
  dirty: boolean;
}

function git(root: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('git', ['-C', root, ...args], { timeout: 10_000, encoding: 'utf8' }, (err, stdout) =>
      resolve(err ? undefined : stdout),
    );
  });
}

/** A .git (folder, or file of a worktree) here or above: without one (and no GIT_DIR), git is not started. */
function insideGit(root: string): boolean {
  if (process.env.GIT_DIR) return true;
  for (let d = root; ; d = dirname(d)) {
    if (existsSync(join(d, '.git'))) return true;
    if (dirname(d) === d) return false;
  }
}

export async function readGitState(root: string): Promise<GitState | null> {
  // Starting a process costs ~10 ms of the main thread on every run, which a workspace outside git need not pay.
  if (!insideGit(root)) return null;
  const commit = (await git(root, ['rev-parse', '--verify', '-q', 'HEAD']))?.trim();
  if (!commit || !/^[0-9a-f]{40,64}$/.test(commit)) return null;
  const status = await git(root, ['status', '--porcelain', '--untracked-files=no']);
  if (status === undefined) return null;
  return { commit, dirty: status.trim() !== '' };
}
