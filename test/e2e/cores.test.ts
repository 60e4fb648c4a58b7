// The cores a training stage gets, through the CLI: all of them for a single run, floor(cores / N) with --jobs N,
// and min(shards, those cores) worker threads (the shard count is the math, the workers only schedule it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, readdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { makeWorkspace, removeWorkspace, repoRoot, runCli } from '../engine/rig.js';

const SHARDS = 4;

function workersLine(ws: string): string {
  const runs = readdirSync(join(ws, 'results/runs')).sort();
  const log = readFileSync(join(ws, 'results/runs', runs.at(-1)!, 'logs', 'pretext.log'), 'utf8');
  const line = log.split('\n').find((l) => /shards per batch on \d+ worker thread/.test(l));
  assert.ok(line, `no worker line in the pretext log:\n${log}`);
  return line;
}

test('a training stage uses min(shards, its cores) workers: all cores alone, floor(cores / N) with --jobs N', async () => {
  const ws = makeWorkspace();
  try {
    const root = repoRoot();
    for (const d of ['pipelines', 'configs', 'data/cmu-faces']) cpSync(join(root, d), join(ws, d), { recursive: true });
    const cores = availableParallelism();
    const base = ['run', '--config', 'configs/tiny.yaml', '--progress', 'json', '--backend', 'wasm', '--until'];
    const args = [...base, 'pretext', '--set', `pretext.shards=${SHARDS}`];
    for (const jobs of [1, 2]) {
      const r = await runCli(ws, [...args, '--jobs', String(jobs), '--force', 'pretext'], 300_000);
      assert.equal(r.code, 0, r.stderr + r.stdout.slice(-2000));
      const workers = Math.min(SHARDS, Math.max(1, Math.floor(cores / jobs)));
      const s = workers === 1 ? '' : 's';
      assert.match(workersLine(ws), new RegExp(`${SHARDS} shards per batch on ${workers} worker thread${s}$`));
    }
  } finally {
    removeWorkspace(ws);
  }
});
