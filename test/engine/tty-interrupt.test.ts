// Ctrl-C in the live display (listr2, on a real pseudo-terminal from util-linux's `script`) behaves exactly as
// in `--progress plain`: exit 130, run.json 'interrupted', the experiment recorded, the lock released. Also
// for a `kill -INT` of the runner. The slow stage waits for a 'go' file, so nothing depends on timing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { procStat } from '../../src/core/procs.js';
import { CLI, finalStates, isRunning, makeWorkspace, removeWorkspace, run, startCli, waitFor } from './rig.js';

const PIPELINE = `name: tty
stages:
  quick:
    kind: command
    params:
      cmd: echo quick > {outputs.o}
      outputs: { o: file }
  slow:
    kind: command
    inputs: { q: quick.o }
    params:
      cmd: ${JSON.stringify('echo $$ > slow.pid; while [ ! -e go ]; do sleep 0.05; done; cat {inputs.q} > {outputs.o}')}
      outputs: { o: file }
`;

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The slow stage's shell, once it runs. */
async function slowShell(ws: string): Promise<number> {
  const file = join(ws, 'slow.pid');
  await waitFor(() => existsSync(file) && /^\d+\n$/.test(readFileSync(file, 'utf8')), 30_000, 'the slow stage');
  return Number(readFileSync(file, 'utf8'));
}

/** `facepipe run --progress tty` on a pseudo-terminal; `-e` makes script exit with the runner's code. */
function startOnTty(ws: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'xterm', FACEPIPE_DEBUG: '' };
  delete env.CI; // as on a developer's terminal
  const cmd = `${quote(process.execPath)} ${quote(CLI)} run pipelines/p.yaml --progress tty`;
  const child = spawn('script', ['-qefc', cmd, '/dev/null'], { cwd: ws, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const done = new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    child.on('error', (e) =>
      reject(new Error(`cannot start util-linux's script (apt-get install bsdutils util-linux): ${e.message}`)),
    );
    child.on('close', (code) => resolve({ code, output }));
  });
  return { child, done };
}

/** What an interrupted run leaves: the same for every progress mode. */
function leftBehind(ws: string) {
  const runs = readdirSync(join(ws, 'results/runs'));
  assert.equal(runs.length, 1);
  const rec = JSON.parse(readFileSync(join(ws, 'results/runs', runs[0], 'run.json'), 'utf8'));
  const exp = JSON.parse(readFileSync(join(ws, 'results/tty/experiment.json'), 'utf8'));
  return {
    status: rec.status,
    stages: Object.fromEntries(rec.stages.map((s: { id: string; state: string }) => [s.id, s.state])),
    experiment: { lastRun: exp.lastRun === runs[0], quick: exp.stages.quick.state, slow: exp.stages.slow.state },
    lock: existsSync(join(ws, '.facepipe/lock')),
  };
}

const EXPECTED = {
  status: 'interrupted',
  stages: { quick: 'done', slow: 'interrupted' },
  experiment: { lastRun: true, quick: 'done', slow: 'interrupted' },
  lock: false,
};

async function thenResumes(ws: string): Promise<void> {
  writeFileSync(join(ws, 'go'), '');
  const resumed = await run(ws, 'pipelines/p.yaml', '--no-wait');
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(finalStates(resumed.events), { quick: 'cached', slow: 'done' });
}

for (const how of ['Ctrl-C typed on the terminal', 'kill -INT of the runner'] as const) {
  test(`live display, ${how}: exit 130, run.json 'interrupted', experiment recorded, lock released`, async () => {
    const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
    try {
      const { child, done } = startOnTty(ws);
      const shell = await slowShell(ws);
      if (how === 'Ctrl-C typed on the terminal') child.stdin.write('\x03');
      else {
        const worker = procStat(shell)!.ppid;
        process.kill(procStat(worker)!.ppid, 'SIGINT');
      }
      const r = await done;
      assert.match(r.output, /stopping: finishing nothing new/);
      assert.equal(r.code, 130, r.output.slice(-1500));
      assert.deepEqual(leftBehind(ws), EXPECTED);
      await waitFor(() => !isRunning(shell), 10_000, "the stage's command to stop");
      await thenResumes(ws);
    } finally {
      removeWorkspace(ws);
    }
  });
}

test('the same interrupt in --progress plain leaves exactly the same behind', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
  try {
    const { child, done } = startCli(ws, ['run', 'pipelines/p.yaml', '--progress', 'plain']);
    await slowShell(ws);
    child.kill('SIGINT');
    const r = await done;
    assert.equal(r.code, 130, r.stderr);
    assert.deepEqual(leftBehind(ws), EXPECTED);
    await thenResumes(ws);
  } finally {
    removeWorkspace(ws);
  }
});
