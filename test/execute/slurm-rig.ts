// Shared by the tests that run real jobs on the dev cluster (scripts/dev-cluster.sh): find the cluster or fail
// saying how to start it, write job scripts, tag jobs per test and cancel them afterwards.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SlurmClient, type SlurmClientOptions } from '../../src/execute/executors/slurm/client.js';
import { execSlurm, type SlurmExec } from '../../src/execute/executors/slurm/exec.js';

export const PARTITION = 'dev';

const START =
  'start it with `sudo scripts/dev-cluster.sh start` (CI: .ci/run does); if it says /etc/slurm/slurm.conf belongs ' +
  'to another installation, also `eval "$(scripts/dev-cluster.sh env)"`';

/** A client for the dev cluster; fails the test (never skips) when the cluster is not there. */
export async function devCluster(options: SlurmClientOptions = {}): Promise<SlurmClient> {
  const client = new SlurmClient({ timeoutMs: 15_000, ...options });
  const r = await client.reachable();
  if (!r.ok) assert.fail(`the Slurm dev cluster is not reachable: ${r.error}\n  ${START}`);
  const p = r.info.partitions.find((x) => x.name === PARTITION);
  if (!p || p.nodes !== 2 || !p.available)
    assert.fail(
      `Slurm answers, but has no partition '${PARTITION}' with 2 nodes (that is the dev cluster's); ${START}`,
    );
  return client;
}

/** The real exec, logging each command (file name and arguments) it runs. */
export function countingExec(): { exec: SlurmExec; calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    exec: (file, args, options) => {
      calls.push([file, ...args]);
      return execSlurm(file, args, options);
    },
  };
}

let serial = 0;

/** A job name unique to this test process and call: squeue and scancel select by it. */
export function tag(what: string): string {
  return `fp-test-${process.pid}-${++serial}-${what}`;
}

/** A temp folder (the dev cluster's nodes are this machine, so it is "shared") with the job script in it. */
export function jobFolder(script: string): { dir: string; script: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'facepipe-slurm-'));
  const path = join(dir, 'job.sh');
  writeFileSync(path, `#!/bin/bash\n${script}\n`);
  chmodSync(path, 0o755);
  return { dir, script: path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
