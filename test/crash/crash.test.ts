// The crash harness: `npm run test:crash -- N` (npm test runs it with N = 3). Three scenarios, the tiny face
// pipeline, a pipeline of command stages and a 3-point sweep of the face pipeline, take turns: each of N moments
// (uniform over an uninterrupted run's duration, seeded) kills the run's whole process group with SIGKILL, then a
// plain rerun finishes the work. The final outputs must be byte-identical to the uninterrupted run's, no process
// of the killed run may still be running, and no temporary file may be left. Prints `crash: N of N identical`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import seedrandom from 'seedrandom';
import { sha256 } from '../../src/core/hash.js';
import {
  finalStates,
  listFiles,
  makeWorkspace,
  removeWorkspace,
  repoRoot,
  runCli,
  startCli,
  writeFiles,
} from '../engine/rig.js';

function parseN(): number {
  const arg = process.argv[2] ?? process.env.FACEPIPE_CRASH_N ?? '3';
  if (!/^\d+$/.test(arg) || Number(arg) < 1) {
    process.stderr.write(
      `test:crash: N ${JSON.stringify(arg)} is not a whole number of at least 1 (the number of kill moments)\n` +
        '  fix: npm run test:crash -- 20\n',
    );
    process.exit(2);
  }
  return Number(arg);
}

const N = parseN();
const SEED = process.env.FACEPIPE_CRASH_SEED ?? String(Date.now());
const rng = seedrandom(SEED);

// A stage that resumes from its scratch folder (it counts the steps already there), one that writes a folder
// file by file, and one joining them. An orphan of the first stage running beside the rerun would add steps.
const COMMANDS = `name: cmds
stages:
  steps:
    kind: command
    params:
      cmd: ${JSON.stringify(
        'P="$FACEPIPE_WORK_DIR/progress"; touch "$P"; n=$(wc -l < "$P"); while [ $n -lt 6 ]; do n=$((n+1)); echo "step $n" >> "$P"; sleep 0.5; done; cp "$P" {outputs.o}',
      )}
      outputs: { o: file }
  fan:
    kind: command
    params:
      cmd: ${JSON.stringify('for i in $(seq 1 20); do echo "file $i" > {outputs.d}/f$i; sleep 0.03; done')}
      outputs: { d: dir }
  join:
    kind: command
    inputs: { s: steps.o, f: fan.d }
    params:
      cmd: ${JSON.stringify('sleep 0.3; cat {inputs.s} {inputs.f}/f* > {outputs.o}')}
      outputs: { o: file }
`;

interface Scenario {
  name: string;
  args: string[];
  setup(ws: string): void;
}

const face = (ws: string) => {
  for (const d of ['pipelines', 'configs', 'data/cmu-faces'])
    cpSync(join(repoRoot(), d), join(ws, d), { recursive: true });
};
const FACE_ARGS = ['run', '--config', 'configs/tiny.yaml', '--backend', 'wasm', '--progress', 'json'];

const SCENARIOS: Scenario[] = [
  { name: 'tiny face pipeline', args: FACE_ARGS, setup: face },
  {
    name: 'command stages',
    args: ['run', 'pipelines/cmds.yaml', '--progress', 'json', '--jobs', '2'],
    setup: (ws) => writeFiles(ws, { 'pipelines/cmds.yaml': COMMANDS }),
  },
  { name: '3-point sweep', args: [...FACE_ARGS, '--sweep', 'triarchy.loss.margin=0.2,0.3,0.4'], setup: face },
];

/** sha256 of every output under results/ (run records and experiment summaries name runs and times: left out). */
function digests(ws: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of listFiles(join(ws, 'results'))) {
    if (f.startsWith('runs/') || f.endsWith('/experiment.json')) continue;
    out[f] = sha256(readFileSync(join(ws, 'results', f)));
  }
  return out;
}

/** Processes whose working folder is inside ws: a runner, a worker or a command left from a killed run. */
function processesIn(ws: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cwd = readlinkSync(`/proc/${name}/cwd`);
      const state = /\) (\S)/.exec(readFileSync(`/proc/${name}/stat`, 'utf8'))?.[1];
      if ((cwd === ws || cwd.startsWith(ws + '/')) && state !== 'Z') out.push(Number(name));
    } catch {
      /* gone, or not ours to read */
    }
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Baseline {
  digests: Record<string, string>;
  ms: number;
}

async function baseline(s: Scenario): Promise<Baseline> {
  const ws = makeWorkspace();
  try {
    s.setup(ws);
    const t0 = Date.now();
    const r = await runCli(ws, s.args, 600_000);
    assert.equal(r.code, 0, `${s.name}, uninterrupted: ${r.stderr}`);
    return { digests: digests(ws), ms: Date.now() - t0 };
  } finally {
    removeWorkspace(ws);
  }
}

/** One kill moment: returns '' when all is well, else what differed. */
async function crashOnce(s: Scenario, base: Baseline, atMs: number): Promise<{ problem: string; landed: boolean }> {
  const ws = makeWorkspace();
  try {
    s.setup(ws);
    const { child, done } = startCli(ws, s.args, undefined, { detached: true });
    let finished = false;
    void done.then(() => (finished = true));
    await sleep(atMs);
    const landed = !finished;
    try {
      process.kill(-child.pid!, 'SIGKILL'); // kill -9 -- -PGID
    } catch {
      /* it had finished */
    }
    await done;
    const rerun = await runCli(ws, s.args, 600_000); // at once, as a user or a scheduler would
    if (rerun.code !== 0) return { problem: `rerun exited ${rerun.code}: ${rerun.stderr.slice(-400)}`, landed };
    const states = Object.values(finalStates(rerun.events));
    if (!states.every((st) => st === 'done' || st === 'cached'))
      return { problem: `rerun states ${JSON.stringify(finalStates(rerun.events))}`, landed };
    const got = digests(ws);
    const diff = Object.keys({ ...got, ...base.digests }).filter((k) => got[k] !== base.digests[k]);
    if (diff.length) return { problem: `outputs differ: ${diff.join(', ')}`, landed };
    const stray = processesIn(ws);
    if (stray.length) return { problem: `processes of the killed run still running: ${stray.join(' ')}`, landed };
    const temps = listFiles(ws).filter((f) => /\.tmp-\d+-|\.fpck\.\d+\.tmp$/.test(f));
    if (temps.length) return { problem: `temporary files left: ${temps.join(', ')}`, landed };
    return { problem: '', landed };
  } finally {
    for (const p of processesIn(ws)) process.kill(p, 'SIGKILL');
    removeWorkspace(ws);
  }
}

test(`crash harness: ${N} kill -9 moments of the process group, each followed by a plain rerun`, async (t) => {
  t.diagnostic(`seed ${SEED} (FACEPIPE_CRASH_SEED=${SEED} repeats these moments)`);
  const bases = new Map<Scenario, Baseline>();
  let identical = 0;
  let landed = 0;
  const problems: string[] = [];
  for (let i = 0; i < N; i++) {
    const s = SCENARIOS[i % SCENARIOS.length];
    if (!bases.has(s)) bases.set(s, await baseline(s));
    const base = bases.get(s)!;
    const at = Math.floor(rng() * base.ms * 0.95);
    const r = await crashOnce(s, base, at);
    if (r.landed) landed++;
    if (r.problem) problems.push(`#${i + 1} ${s.name}, killed at ${at} ms: ${r.problem}`);
    else identical++;
    t.diagnostic(
      `#${i + 1} ${s.name}: killed at ${at} of ~${base.ms} ms${r.landed ? '' : ' (after it ended)'}: ${r.problem || 'identical'}`,
    );
  }
  const summary = `crash: ${identical} of ${N} identical (${landed} kills landed mid-run)`;
  process.stdout.write(summary + '\n');
  t.diagnostic(summary);
  assert.equal(identical, N, problems.join('\n'));
});
