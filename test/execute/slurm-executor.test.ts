// `facepipe run --executor slurm` against the REAL dev cluster (scripts/dev-cluster.sh: nodes n1 and n2): sweeps
// as jobs on both nodes, reruns that submit nothing, byte-identical results, retries, failures with their logs,
// Ctrl-C, scancel, kill -9 of the runner and adoption, the canary. Without the cluster every test fails, naming
// the script that starts it. The tests run one after another (one file): they share the cluster's 4 CPUs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  finalStates,
  listFiles,
  makeWorkspace,
  removeWorkspace,
  repoRoot,
  runCli,
  startCli,
  waitFor,
  type CliResult,
} from '../engine/rig.js';
import { devCluster } from './slurm-rig.js';

const LIMIT = { timeout: 600_000 };
const SWEEP = ['--sweep', 'triarchy.seed=0,1,2,3,4,5'];
const TINY = ['--config', 'configs/tiny.yaml', '--backend', 'wasm'];

interface Line {
  event: 'submitted' | 'ended';
  id: string;
  tag?: string;
  key?: string;
  stage?: string;
  attempt?: number;
  log?: string;
  state?: string;
  node?: string;
}

/** Every ledger line of the workspace, by run folder. */
function ledgers(ws: string): Map<string, Line[]> {
  const root = join(ws, '.facepipe/slurm');
  const out = new Map<string, Line[]>();
  for (const run of existsSync(root) ? readdirSync(root) : []) {
    const p = join(root, run, 'jobs.jsonl');
    const lines = existsSync(p) ? readFileSync(p, 'utf8').split('\n').filter(Boolean) : [];
    out.set(
      run,
      lines.map((l) => JSON.parse(l) as Line),
    );
  }
  return out;
}

const submitted = (ws: string) => [...ledgers(ws).values()].flat().filter((l) => l.event === 'submitted');
const ended = (ws: string) => [...ledgers(ws).values()].flat().filter((l) => l.event === 'ended');

/** Jobs of these tags that Slurm still has queued or running. */
function liveJobs(tags: string[]): string[] {
  if (!tags.length) return [];
  const out = execFileSync('squeue', ['--noheader', `--name=${tags.join(',')}`, '--format=%i %T'], {
    encoding: 'utf8',
  });
  return out.split('\n').filter((l) => l.trim());
}

function faceWorkspace(): string {
  const ws = makeWorkspace();
  for (const d of ['pipelines', 'configs', 'data/cmu-faces'])
    cpSync(join(repoRoot(), d), join(ws, d), { recursive: true });
  return ws;
}

/** sha256 of every file of every experiment's results (experiment.json names the run, so it is left out). */
function resultDigests(ws: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of listFiles(join(ws, 'results'))) {
    if (f.startsWith('runs/') || f.endsWith('experiment.json')) continue;
    out[f] = createHash('sha256')
      .update(readFileSync(join(ws, 'results', f)))
      .digest('hex');
  }
  return out;
}

const slurmRun = (ws: string, args: string[], timeoutMs = 400_000) =>
  runCli(ws, ['run', '--progress', 'json', '--executor', 'slurm', ...args], timeoutMs);

const explain = (r: CliResult) => `exit ${r.code}\n${r.stderr}\n${r.stdout.slice(-3000)}`;

let localDigests: Record<string, string> | undefined;

/** The tiny 6-point sweep run locally (--jobs 2), once for the tests that compare with it. */
async function localSweep(): Promise<Record<string, string>> {
  if (localDigests) return localDigests;
  const ws = faceWorkspace();
  try {
    const r = await runCli(
      ws,
      ['run', '--progress', 'json', '--executor', 'local', '--jobs', '2', ...TINY, ...SWEEP],
      400_000,
    );
    assert.equal(r.code, 0, explain(r));
    localDigests = resultDigests(ws);
    return localDigests;
  } finally {
    removeWorkspace(ws);
  }
}

test(
  'a 6-point tiny sweep runs as Slurm jobs on both nodes, a rerun submits nothing, results equal --executor local byte for byte',
  LIMIT,
  async () => {
    await devCluster();
    const ws = faceWorkspace();
    try {
      const first = await slurmRun(ws, [...TINY, ...SWEEP]);
      assert.equal(first.code, 0, explain(first));
      const states = Object.values(finalStates(first.events));
      assert.equal(states.length, 30, '6 points x 5 stages');
      assert.ok(
        states.every((s) => s === 'done'),
        JSON.stringify(finalStates(first.events)),
      );
      const subs = submitted(ws);
      // split and pretext are shared by the points; triarchy, prune and evaluate run per point.
      assert.equal(subs.length, 2 + 6 * 3, subs.map((s) => s.stage).join(' '));
      assert.equal(new Set(subs.map((s) => s.key)).size, subs.length, 'one job per key');
      assert.equal(new Set(subs.map((s) => s.tag)).size, 1, 'every job carries the run tag');
      for (const s of subs) assert.ok(existsSync(s.log!), `log of job ${s.id}`);
      const nodes = new Set(ended(ws).map((e) => e.node));
      assert.deepEqual([...nodes].sort(), ['n1', 'n2'], 'the fan-out spreads over both slurmd nodes');
      for (const e of ended(ws)) assert.match(e.state!, /^(DONE|COMPLETED)$/, `job ${e.id}`);

      const runsBefore = ledgers(ws).size;
      const again = await slurmRun(ws, [...TINY, ...SWEEP]);
      assert.equal(again.code, 0, explain(again));
      assert.ok(Object.values(finalStates(again.events)).every((s) => s === 'cached'));
      assert.equal(ledgers(ws).size, runsBefore, 'a rerun submits nothing (not even the canary)');
      assert.equal(submitted(ws).length, subs.length);

      assert.deepEqual(resultDigests(ws), await localSweep(), 'slurm and local results are byte-identical');
    } finally {
      removeWorkspace(ws);
    }
  },
);

test(
  'kill -9 of the runner mid-sweep: the next run adopts the live jobs, submits no duplicate, ends with the local digests',
  LIMIT,
  async () => {
    await devCluster();
    const ws = faceWorkspace();
    try {
      const args = ['run', '--progress', 'json', '--executor', 'slurm', ...TINY, ...SWEEP];
      const killed = startCli(ws, args);
      await waitFor(
        () => submitted(ws).filter((s) => /triarchy$/.test(s.stage!)).length >= 6,
        300_000,
        'the six triarchy jobs to be submitted',
      );
      killed.child.kill('SIGKILL');
      assert.equal((await killed.done).signal, 'SIGKILL');
      const tag = submitted(ws)[0].tag!;
      const alive = liveJobs([tag]);
      assert.ok(alive.length > 0, 'jobs of the killed runner are still queued or running');

      const resumed = await slurmRun(ws, [...TINY, ...SWEEP]);
      assert.equal(resumed.code, 0, explain(resumed));
      const logs = readdirSync(join(ws, 'results/runs'))
        .sort()
        .slice(-1)
        .flatMap((r) =>
          readdirSync(join(ws, 'results/runs', r, 'logs')).map((f) => join(ws, 'results/runs', r, 'logs', f)),
        );
      const adopted = logs.filter((f) => /# slurm: adopted job \d+/.test(readFileSync(f, 'utf8')));
      assert.ok(adopted.length > 0, 'at least one live job was adopted');
      const keys = submitted(ws).map((s) => s.key);
      assert.equal(new Set(keys).size, keys.length, 'no key was submitted twice');
      assert.equal(liveJobs([tag]).length, 0);
      assert.ok(existsSync(join(ws, '.facepipe/slurm', tag.slice(3), 'closed')), 'the interrupted run is closed');
      assert.deepEqual(resultDigests(ws), await localSweep(), 'the resumed sweep equals a local run');
    } finally {
      removeWorkspace(ws);
    }
  },
);

const commandPipeline = (stages: string) => ({ 'pipelines/p.yaml': `name: p\nstages:\n${stages}` });

test('a stage that fails once passes on its retry (retries: 1): two jobs, the second one done', LIMIT, async () => {
  await devCluster();
  const ws = makeWorkspace(
    commandPipeline(`  flaky:
    kind: command
    retries: 1
    params:
      cmd: 'if [ ! -e tried ]; then touch tried; echo "first try fails" >&2; exit 3; fi; echo ok > {outputs.o}'
      outputs: { o: file }
`),
  );
  try {
    const r = await slurmRun(ws, ['pipelines/p.yaml']);
    assert.equal(r.code, 0, explain(r));
    assert.deepEqual(finalStates(r.events), { flaky: 'done' });
    const subs = submitted(ws);
    assert.deepEqual(
      subs.map((s) => s.attempt),
      [1, 2],
    );
    assert.notEqual(subs[0].id, subs[1].id);
    assert.match(readFileSync(subs[0].log!, 'utf8'), /first try fails/);
    assert.equal(readFileSync(join(ws, 'results/p/flaky/o'), 'utf8'), 'ok\n');
    const runLog = readFileSync(
      join(ws, 'results/runs', readdirSync(join(ws, 'results/runs'))[0], 'logs/flaky.log'),
      'utf8',
    );
    assert.match(runLog, /# attempt 1 of 2 failed: .*command exited with code 3/);
  } finally {
    removeWorkspace(ws);
  }
});

test("a failing stage is reported with its job's log path and the log's last lines", LIMIT, async () => {
  await devCluster();
  const ws = makeWorkspace(
    commandPipeline(`  bad:
    kind: command
    params:
      cmd: 'echo "about to fail on $SLURMD_NODENAME"; exit 3'
      outputs: { o: file }
`),
  );
  try {
    const r = await slurmRun(ws, ['pipelines/p.yaml']);
    assert.equal(r.code, 1, explain(r));
    const [sub] = submitted(ws);
    const rel = sub.log!.slice(ws.length + 1);
    assert.match(rel, /^\.facepipe\/slurm\/[^/]+\/bad\.\d+\.log$/);
    assert.ok(r.stderr.includes(`stage bad failed: `), r.stderr);
    assert.ok(r.stderr.includes(`log: ${rel}`), r.stderr);
    assert.match(r.stderr, /last lines:\n(.*\n)*\s+about to fail on n[12]/);
    assert.match(readFileSync(sub.log!, 'utf8'), /about to fail on n[12]/);
  } finally {
    removeWorkspace(ws);
  }
});

const sleeper = (name: string, extra = '') => `  ${name}:
    kind: command${extra}
    params:
      cmd: 'touch started.${name}; sleep 300; echo > {outputs.o}'
      outputs: { o: file }
`;

test(
  'Ctrl-C cancels every job of the run (by its tag) and exits 130, leaving squeue empty; status listed them',
  LIMIT,
  async () => {
    await devCluster();
    const ws = makeWorkspace(commandPipeline(sleeper('a') + sleeper('b') + sleeper('c')));
    try {
      const run = startCli(ws, ['run', 'pipelines/p.yaml', '--progress', 'json', '--executor', 'slurm']);
      const started = () => ['a', 'b', 'c'].filter((s) => existsSync(join(ws, `started.${s}`))).length;
      await waitFor(() => started() === 3, 120_000, 'the three jobs to start');
      const status = await runCli(ws, ['status', 'pipelines/p.yaml']);
      assert.equal(status.code, 0, explain(status));
      assert.match(status.stdout, /slurm jobs of this workspace: 3 running/);
      for (const s of ['a', 'b', 'c']) assert.match(status.stdout, new RegExp(`\\d+ +RUNNING +n[12] +${s} `));

      run.child.kill('SIGINT');
      const r = await run.done;
      assert.equal(r.code, 130, explain(r));
      assert.deepEqual(finalStates(r.events), { a: 'interrupted', b: 'interrupted', c: 'interrupted' });
      const tags = [...new Set(submitted(ws).map((s) => s.tag!))];
      assert.deepEqual(liveJobs(tags), [], 'nothing of the run is left queued or running');
      assert.deepEqual(new Set(ended(ws).map((e) => e.state)), new Set(['CANCELLED']));
    } finally {
      removeWorkspace(ws);
    }
  },
);

test('scancel of one job is reported as cancelled, not retried; the other stage finishes', LIMIT, async () => {
  await devCluster();
  const ws = makeWorkspace(
    commandPipeline(
      sleeper('victim', '\n    retries: 2') +
        `  bystander:
    kind: command
    params:
      cmd: 'while [ ! -e go ]; do sleep 0.1; done; echo fine > {outputs.o}'
      outputs: { o: file }
`,
    ),
  );
  try {
    const run = startCli(ws, ['run', 'pipelines/p.yaml', '--progress', 'json', '--executor', 'slurm']);
    await waitFor(() => existsSync(join(ws, 'started.victim')), 120_000, 'the victim job to start');
    const victim = submitted(ws).find((s) => s.stage === 'victim')!;
    execFileSync('scancel', [victim.id]);
    writeFileSync(join(ws, 'go'), '');
    const r = await run.done;
    assert.equal(r.code, 1, explain(r));
    assert.deepEqual(finalStates(r.events), { victim: 'failed', bystander: 'done' });
    assert.match(r.stderr, new RegExp(`stage victim failed: Slurm job ${victim.id} was cancelled`));
    assert.ok(r.stderr.includes(`log: ${victim.log!.slice(ws.length + 1)}`), r.stderr);
    assert.equal(submitted(ws).filter((s) => s.stage === 'victim').length, 1, 'a cancelled job is not retried');
  } finally {
    removeWorkspace(ws);
  }
});

test(
  'the canary fails fast when the nodes cannot run facepipe: one clear message, nothing left queued',
  LIMIT,
  async () => {
    await devCluster();
    const ws = makeWorkspace({
      ...commandPipeline(sleeper('a') + sleeper('b')),
      'configs/cluster.yaml': 'executor:\n  type: slurm\n  node: /nonexistent/bin/node\n',
    });
    try {
      const r = await runCli(
        ws,
        ['run', 'pipelines/p.yaml', '--progress', 'json', '-c', 'configs/cluster.yaml'],
        120_000,
      );
      assert.equal(r.code, 1, explain(r));
      assert.match(
        r.stderr,
        /error\[slurm-canary\]: Slurm jobs cannot run facepipe on this workspace: the canary job \d+ ended FAILED/,
      );
      assert.match(
        r.stderr,
        /log: \.facepipe\/slurm\/[^/]+\/canary\.\d+\.log; last lines:\n.*\/nonexistent\/bin\/node: No such file/,
      );
      assert.match(r.stderr, /fix: .*filesystem the compute nodes share.*executor\.node/);
      assert.ok(!existsSync(join(ws, 'started.a')) && !existsSync(join(ws, 'started.b')), 'no stage job ran');
      const tags = [...new Set(submitted(ws).map((s) => s.tag!))];
      assert.deepEqual(liveJobs(tags), [], 'the jobs that waited for the canary are gone');
      const runs = readdirSync(join(ws, 'results/runs'));
      assert.equal(JSON.parse(readFileSync(join(ws, 'results/runs', runs[0], 'run.json'), 'utf8')).status, 'failed');
    } finally {
      removeWorkspace(ws);
    }
  },
);

test('facepipe doctor says Slurm is reachable (sinfo) and lists the partition', LIMIT, async () => {
  await devCluster();
  const ws = makeWorkspace();
  try {
    const r = await runCli(ws, ['doctor']);
    assert.match(r.stdout, /^executor slurm: reachable \(Slurm \d+\.\d+/m);
    assert.match(r.stdout, /partition dev \(default\): up, 2 node\(s\)/);
  } finally {
    removeWorkspace(ws);
  }
});
