// Which layer wins: the pipeline's own stage params beat its base config (`config:`), as a file's own values beat
// its defaults list in Hydra (`_self_` last); every --config, sweep point and --set beats the pipeline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadPipeline } from '../../src/load/load.js';
import { loadKinds } from '../../src/stages/registry.js';
import { makeWorkspace, removeWorkspace, repoRoot, runCli } from './rig.js';

/** The case: the face-verification pipeline with its real base config (configs/default.yaml, test: 6). */
function workspace(): string {
  const root = repoRoot();
  const pipeline = readFileSync(join(root, 'pipelines', 'face-verification.yaml'), 'utf8').replace(
    /^ {6}seed: 0\n/m,
    '      seed: 0\n      identities: { test: 10 }\n',
  );
  assert.match(pipeline, /identities: \{ test: 10 \}/);
  const ws = makeWorkspace({
    'pipelines/mine.yaml': pipeline,
    'configs/more.yaml': 'split:\n  identities: { test: 4 }\n',
  });
  cpSync(join(root, 'configs', 'default.yaml'), join(ws, 'configs', 'default.yaml'));
  cpSync(join(root, 'data', 'cmu-faces'), join(ws, 'data', 'cmu-faces'), { recursive: true });
  return ws;
}

test("precedence: the pipeline's own params beat its base config; --config, sweeps and --set beat the pipeline", async () => {
  const ws = workspace();
  try {
    const catalog = await loadKinds();
    const split = (opts: { configFiles?: string[]; sets?: string[] } = {}) =>
      loadPipeline({ workspace: ws, pipelineFile: 'pipelines/mine.yaml', catalog, ...opts }).stages[0].params as {
        identities: { validation: number; test: number };
      };
    const own = split();
    assert.equal(own.identities.test, 10, 'the explicit pipeline value wins over configs/default.yaml');
    assert.equal(own.identities.validation, 3, 'what the pipeline leaves unset still comes from the base config');
    assert.equal(split({ configFiles: ['configs/more.yaml'] }).identities.test, 4, '--config beats the pipeline');
    assert.equal(split({ sets: ['split.identities.test=2'] }).identities.test, 2, '--set beats everything');
    const swept = loadPipeline({
      workspace: ws,
      pipelineFile: 'pipelines/mine.yaml',
      catalog,
      extraLayers: [{ label: 'sweep point', values: { split: { identities: { test: 7 } } } }],
    }).stages[0].params as { identities: { test: number } };
    assert.equal(swept.identities.test, 7, 'a sweep point beats the pipeline');
  } finally {
    removeWorkspace(ws);
  }
});

test('precedence: a bad value is reported where it comes from (the pipeline over its base config)', async () => {
  const ws = makeWorkspace({
    'pipelines/p.yaml':
      'config: ../configs/base.yaml\nstages:\n  a:\n    kind: command\n    params:\n      cmd: 3\n      outputs: { o: file }\n',
    'configs/base.yaml': 'a:\n  cmd: echo from base\n',
  });
  try {
    // The pipeline's cmd: 3 wins over the base config's valid string, so the error points into the pipeline.
    const r = await runCli(ws, ['validate', 'pipelines/p.yaml']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /pipelines\/p\.yaml:6:\d+: error\[.*\]: .*string/);
    assert.match(r.stderr, /at key: stages\.a\.params\.cmd/);
  } finally {
    removeWorkspace(ws);
  }
});

test('precedence: a run splits with the test identities the pipeline set over its base config', async () => {
  const ws = makeWorkspace({
    'pipelines/p.yaml': [
      'config: ../configs/base.yaml',
      'stages:',
      '  split:',
      '    kind: split',
      '    inputs: { dataset: { path: data/cmu-faces } }',
      '    params: { identities: { test: 10 }, pairs: { per_set: 5 } }',
      '',
    ].join('\n'),
    'configs/base.yaml': 'split:\n  identities: { validation: 2, test: 6 }\n',
  });
  try {
    cpSync(join(repoRoot(), 'data', 'cmu-faces'), join(ws, 'data', 'cmu-faces'), { recursive: true });
    const r = await runCli(ws, ['run', 'pipelines/p.yaml', '--progress', 'json']);
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-1500));
    const summary = JSON.parse(readFileSync(join(ws, 'results/p/split/splits/summary.json'), 'utf8')) as {
      identities: { validation: string[]; test: string[] };
    };
    assert.equal(summary.identities.test.length, 10, 'the pipeline value');
    assert.equal(summary.identities.validation.length, 2, 'the base config value the pipeline does not set');
  } finally {
    removeWorkspace(ws);
  }
});
