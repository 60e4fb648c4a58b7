// The executor settings as a user writes them (no cluster needed): the `executor:` section of a config and a
// stage's `resources:` / `retries:`, validated with file:line:column like every other key; resources left out
// of the key; kinds' default resources; retries owned by facepipe, on every executor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAll } from '../../src/cli/context.js';
import { stageResources } from '../../src/execute/resources.js';
import { sbatchArgs } from '../../src/execute/executors/slurm/sbatch-args.js';
import { finalStates, makeWorkspace, parseStatus, removeWorkspace, repoRoot, run, runCli } from './rig.js';

const PIPELINE = `name: p
stages:
  a:
    kind: command
    resources: { cpus: 2, mem: 512, time: 10 }
    params:
      cmd: echo a > {outputs.o}
      outputs: { o: file }
`;

async function badInput(files: Record<string, string>, args: string[]): Promise<string> {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE, ...files });
  try {
    const r = await runCli(ws, ['run', 'pipelines/p.yaml', ...args]);
    assert.equal(r.code, 2, r.stderr + r.stdout);
    assert.ok(!r.events.some((e) => e.type === 'run-start'), 'nothing ran');
    return r.stderr;
  } finally {
    removeWorkspace(ws);
  }
}

test('executor: an unknown key, a bad value and an unknown stage in a config are errors with file:line:column', async () => {
  const err = await badInput(
    {
      'configs/c.yaml': 'a: {}\nexecutor:\n  type: slurm\n  partiton: gpu\n  retries: -1\n',
      'configs/d.yaml': 'executor:\n  resources:\n    b: { gpus: 1 }\n    a: { mem: lots, time: "1:30:00" }\n',
    },
    ['-c', 'configs/c.yaml', '-c', 'configs/d.yaml'],
  );
  assert.match(err, /^configs\/c\.yaml:4:3: error\[unknown-key\]: unknown key 'partiton' in executor$/m);
  assert.match(err, /fix: did you mean 'partition'\?/);
  assert.match(err, /^configs\/c\.yaml:5:12: error\[bad-value\]: executor\.retries must be >= 0/m);
  assert.match(err, /^configs\/d\.yaml:3:5: error\[unknown-stage\]: executor\.resources names stage 'b'/m);
  assert.match(
    err,
    /^configs\/d\.yaml:4:15: error\[bad-value\]: executor\.resources\.a\.mem "lots" is not a Slurm memory size/m,
  );
  assert.doesNotMatch(err, /resources\.a\.time/, "'1:30:00' is a time limit Slurm reads");
});

test("a stage's resources and retries are checked in the pipeline file, with positions", async () => {
  const err = await badInput(
    {
      'pipelines/p.yaml': PIPELINE.replace(
        '{ cpus: 2, mem: 512, time: 10 }',
        '{ gpus: 1.5, time: soon, disk: 3 }',
      ).replace('    params:', '    retries: many\n    params:'),
    },
    [],
  );
  assert.match(err, /^pipelines\/p\.yaml:5:\d+: error\[wrong-type\]: stages\.a\.resources\.gpus must be an integer/m);
  assert.match(err, /^pipelines\/p\.yaml:5:\d+: error\[unknown-key\]: unknown key 'disk'/m);
  assert.match(
    err,
    /^pipelines\/p\.yaml:5:\d+: error\[bad-value\]: stages\.a\.resources\.time "soon" is not a Slurm time limit/m,
  );
  assert.match(err, /^pipelines\/p\.yaml:6:14: error\[wrong-type\]: stages\.a\.retries must be an integer/m);
});

test('--executor and executor.type must name an executor (exit 2, the place named)', async () => {
  const flag = await badInput({}, ['--executor', 'kubernetes']);
  assert.match(flag, /^command line: error\[unknown-executor\]: --executor "kubernetes": no such executor/m);
  assert.match(flag, /fix: use one of local, slurm/);
  const conf = await badInput({ 'configs/c.yaml': 'executor:\n  type: slurmm\n' }, ['-c', 'configs/c.yaml']);
  assert.match(conf, /^configs\/c\.yaml:2:9: error\[unknown-executor\]: executor\.type "slurmm": no such executor/m);
});

test('resources are not part of the key: changing them keeps the stage cached', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
  try {
    assert.equal((await run(ws, 'pipelines/p.yaml')).code, 0);
    writeFileSync(
      join(ws, 'pipelines/p.yaml'),
      PIPELINE.replace('{ cpus: 2, mem: 512, time: 10 }', '{ gpus: 2, cpus: 8, mem: 64G, time: "2-00:00:00" }'),
    );
    writeFileSync(join(ws, 'configs.yaml'), 'executor:\n  resources:\n    a: { cpus: 16 }\n');
    const status = await runCli(ws, ['status', 'pipelines/p.yaml', '-c', 'configs.yaml']);
    assert.equal(parseStatus(status.stdout).a?.action, 'cached', status.stdout);
    const again = await run(ws, 'pipelines/p.yaml', '-c', 'configs.yaml');
    assert.deepEqual(finalStates(again.events), { a: 'cached' });
  } finally {
    removeWorkspace(ws);
  }
});

test('kinds give defaults: a training stage asks for 1 GPU with a GPU backend, none with wasm; configs override', async () => {
  const ws = makeWorkspace();
  try {
    for (const d of ['pipelines', 'configs', 'data/cmu-faces'])
      cpSync(join(repoRoot(), d), join(ws, d), { recursive: true });
    writeFileSync(
      join(ws, 'configs/cluster.yaml'),
      'executor:\n  type: slurm\n  partition: gpu\n  retries: 2\n  resources:\n    triarchy: { cpus: 8, mem: 16G, time: "4:00:00" }\n    evaluate: { gpus: 1 }\n',
    );
    const plain = await loadAll(undefined, { workspace: ws });
    const stage = (l: typeof plain, n: string) => l.graph.byName.get(n)!;
    assert.deepEqual(stageResources(stage(plain, 'triarchy'), 'tensorflow'), { gpus: 1 });
    assert.deepEqual(stageResources(stage(plain, 'pretext'), 'tensorflow'), { gpus: 1 });
    assert.deepEqual(stageResources(stage(plain, 'triarchy'), 'wasm'), { gpus: 0 });
    assert.deepEqual(stageResources(stage(plain, 'split'), 'tensorflow'), {}, 'split asks for nothing');

    const cluster = await loadAll(undefined, { workspace: ws, config: ['configs/cluster.yaml'] });
    const t = stageResources(stage(cluster, 'triarchy'), 'tensorflow');
    assert.deepEqual(t, { gpus: 1, cpus: 8, mem: '16G', time: '4:00:00' });
    assert.deepEqual(stageResources(stage(cluster, 'evaluate'), 'wasm'), { gpus: 1 });
    assert.equal(cluster.pipeline.executor.type, 'slurm');
    assert.equal(cluster.pipeline.executor.partition, 'gpu');
    assert.equal(cluster.pipeline.executor.retries, 2);
    const args = sbatchArgs({ script: 'job.sh', name: 'fp-x', output: 'x.log', partition: 'gpu', ...t });
    for (const a of [
      '--gres=gpu:1',
      '--cpus-per-task=8',
      '--mem=16G',
      '--time=4:00:00',
      '--no-requeue',
      '--partition=gpu',
    ])
      assert.ok(args.includes(a), `${a} in ${args.join(' ')}`);
    assert.ok(args.includes('--signal=B:TERM@60'), 'a warning signal before the time limit, for checkpoints');
  } finally {
    removeWorkspace(ws);
  }
});

test('retries belong to facepipe, on the local executor too: a stage failing once passes on its retry', async () => {
  const ws = makeWorkspace({
    'pipelines/p.yaml': `name: p
stages:
  flaky:
    kind: command
    retries: 1
    params:
      cmd: 'if [ ! -e tried ]; then touch tried; exit 3; fi; echo ok > {outputs.o}'
      outputs: { o: file }
  never:
    kind: command
    params:
      cmd: 'exit 4'
      outputs: { o: file }
`,
  });
  try {
    const r = await run(ws, 'pipelines/p.yaml');
    assert.equal(r.code, 1, r.stderr);
    assert.deepEqual(finalStates(r.events), { flaky: 'done', never: 'failed' });
    const runs = join(ws, 'results/runs');
    const id = readdirSync(runs)[0];
    assert.match(
      readFileSync(join(runs, id, 'logs/flaky.log'), 'utf8'),
      /# attempt 1 of 2 failed: command exited with code 3/,
    );
    assert.doesNotMatch(readFileSync(join(runs, id, 'logs/never.log'), 'utf8'), /attempt/, 'no retries: one attempt');
    // executor.retries gives every stage without its own `retries:` another attempt.
    writeFileSync(join(ws, 'c.yaml'), 'executor:\n  retries: 1\n');
    const again = await run(ws, 'pipelines/p.yaml', '-c', 'c.yaml');
    const log = readdirSync(runs)
      .sort()
      .map((d) => join(runs, d, 'logs/never.log'))
      .at(-1)!;
    assert.equal(again.code, 1);
    assert.match(readFileSync(log, 'utf8'), /# attempt 1 of 2 failed: command exited with code 4/);
  } finally {
    removeWorkspace(ws);
  }
});
