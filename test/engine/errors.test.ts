// Bad input: each case must exit 2, name what is wrong AND where (file:line:column), and write nothing
// (no results/, no .facepipe/).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FacepipeError } from '../../src/core/errors.js';
import { makeWorkspace, removeWorkspace, runCli } from './rig.js';

const ok = (name: string, params = '{ cmd: "echo hi > $FACEPIPE_OUT_o", outputs: { o: file } }') =>
  `  ${name}:\n    kind: command\n    params: ${params}\n`;

interface Case {
  name: string;
  pipeline: string;
  files?: Record<string, string>;
  args?: string[];
  /** Each must appear in stderr. */
  expect: Array<string | RegExp>;
  /** How many diagnostics ("N errors" footer when more than one). */
  count?: number;
  maxMs?: number;
}

const cases: Case[] = [
  {
    name: 'YAML syntax error',
    pipeline: 'stages:\n  a:\n    kind: command\n    params: { cmd: x\n  b: 1\n',
    expect: ['pipelines/p.yaml:5:', 'error[yaml-syntax]: YAML syntax error'],
  },
  {
    name: 'unknown key with did-you-mean',
    pipeline: 'stages:\n  a:\n    kind: command\n    inptus: {}\n    params: { cmd: x }\n',
    expect: [
      "pipelines/p.yaml:4:5: error[unknown-key]: unknown key 'inptus' in stages.a",
      "fix: did you mean 'inputs'?",
      '> 4 |     inptus: {}',
    ],
  },
  {
    name: 'unknown param key of a kind, with did-you-mean',
    pipeline: 'stages:\n  a:\n    kind: command\n    params:\n      cmd: x\n      outptus: { o: file }\n',
    expect: ["pipelines/p.yaml:6:7: error[unknown-key]: unknown key 'outptus'", "did you mean 'outputs'?"],
  },
  {
    name: 'wrong type',
    pipeline: 'stages:\n  a:\n    kind: command\n    params:\n      cmd: 3\n',
    expect: ['pipelines/p.yaml:5:12: error[wrong-type]: a.cmd must be a string, got number 3'],
  },
  {
    name: 'missing reference (stage)',
    pipeline: 'stages:\n' + ok('count') + '  b:\n    kind: command\n    inputs: { n: cnt.o }\n    params: { cmd: x }\n',
    expect: [
      "pipelines/p.yaml:7:18: error[missing-reference]: input 'n' of stage 'b' refers to stage 'cnt', which does not exist",
    ],
  },
  {
    name: 'missing reference (output), with did-you-mean',
    pipeline: 'stages:\n' + ok('a') + '  b:\n    kind: command\n    inputs: { n: a.oo }\n    params: { cmd: x }\n',
    expect: [
      "pipelines/p.yaml:7:18: error[missing-reference]: input 'n' of stage 'b' refers to output 'oo' of stage 'a', which has no such output",
      "did you mean 'a.o'?",
    ],
  },
  {
    name: 'bad reference syntax',
    pipeline: 'stages:\n  a:\n    kind: command\n    inputs: { n: data/x.txt }\n    params: { cmd: x }\n',
    expect: [
      "pipelines/p.yaml:4:18: error[bad-reference]: input 'n' of stage 'a' is the string \"data/x.txt\"; expected <stage>.<output>",
      '{ path: data/x.txt }',
    ],
  },
  {
    name: 'cycle names its stages in reading order and points at the closing reference',
    pipeline:
      'stages:\n' +
      '  a:\n    kind: command\n    inputs: { x: b.o }\n    params: { cmd: x, outputs: { o: file } }\n' +
      '  b:\n    kind: command\n    inputs: { x: c.o }\n    params: { cmd: x, outputs: { o: file } }\n' +
      '  c:\n    kind: command\n    inputs: { x: a.o }\n    params: { cmd: x, outputs: { o: file } }\n',
    expect: [
      'pipelines/p.yaml:4:18: error[cycle]: the stages form a cycle: a -> b -> c -> a',
      'at key: stages.a.inputs.x',
    ],
  },
  {
    name: 'self-reference is a cycle',
    pipeline:
      'stages:\n  a:\n    kind: command\n    inputs: { x: a.o }\n    params: { cmd: x, outputs: { o: file } }\n',
    expect: ['pipelines/p.yaml:4:18: error[cycle]: the stages form a cycle: a -> a'],
  },
  {
    name: 'duplicate stage name',
    pipeline: 'stages:\n' + ok('a') + ok('b') + ok('a'),
    expect: ['pipelines/p.yaml:8:3: error[duplicate-key]: duplicate key', 'each stage name'],
  },
  {
    name: 'bad --set: unknown stage (did-you-mean) and bad format, both reported',
    pipeline: 'stages:\n' + ok('train'),
    args: ['--set', 'trian.cmd=x', '--set', 'train.cmd'],
    expect: [
      "command line: error[unknown-stage]: --set trian.cmd=x: no stage named 'trian'",
      "did you mean 'train.cmd'?",
      'command line: error[bad-set]: bad --set "train.cmd": expected KEY=VALUE',
    ],
    count: 2,
  },
  {
    name: 'bad --set: no param path',
    pipeline: 'stages:\n' + ok('a'),
    args: ['--set', 'a=1'],
    expect: ['command line: error[bad-set]: bad --set "a=1": the key must be <stage>.<param>'],
  },
  {
    name: '--set value of the wrong type names the argument',
    pipeline: 'stages:\n' + ok('a'),
    args: ['--set', 'a.cmd=7'],
    expect: ['command line: error[wrong-type]: a.cmd must be a string, got number 7', 'a.cmd (from --set a.cmd=7)'],
  },
  {
    name: 'unknown kind with did-you-mean',
    pipeline: 'stages:\n  a:\n    kind: comand\n    params: { cmd: x }\n',
    expect: [
      "pipelines/p.yaml:3:11: error[unknown-kind]: stage 'a' has unknown kind 'comand'",
      "did you mean 'command'?",
    ],
  },
  {
    name: 'missing required key',
    pipeline: 'stages:\n  a:\n    params: { cmd: x }\n',
    expect: ["pipelines/p.yaml:3:5: error[missing-key]: missing required key 'kind' in stages.a"],
  },
  {
    name: 'missing required param',
    pipeline: 'stages:\n  a:\n    kind: command\n    params: { outputs: { o: file } }\n',
    expect: ["pipelines/p.yaml:4:13: error[missing-key]: missing required key 'cmd'"],
  },
  {
    name: 'unknown key in a config file points into the config',
    pipeline: 'stages:\n' + ok('a'),
    files: { 'configs/c.yaml': '# overrides\na:\n  cmdd: y\n' },
    args: ['--config', 'configs/c.yaml'],
    expect: ["configs/c.yaml:3:3: error[unknown-key]: unknown key 'cmdd'", "did you mean 'cmd'?"],
  },
  {
    name: 'unknown stage in a config file',
    pipeline: 'stages:\n' + ok('train'),
    files: { 'configs/c.yaml': 'train:\n  cmd: y\ntrian:\n  cmd: z\n' },
    args: ['--config', 'configs/c.yaml'],
    expect: [
      "configs/c.yaml:3:1: error[unknown-stage]: config names stage 'trian', which the pipeline does not have",
      "did you mean 'train'?",
    ],
  },
  {
    name: 'unknown key in the base config (config: in the pipeline, relative to it) points into that file',
    pipeline: 'config: ../configs/base.yaml\nstages:\n' + ok('a'),
    files: { 'configs/base.yaml': 'a:\n  env: { X: "1" }\n  cmd2: y\n' },
    expect: ["configs/base.yaml:3:3: error[unknown-key]: unknown key 'cmd2'", "did you mean 'cmd'?"],
  },
  {
    name: 'missing config file',
    pipeline: 'stages:\n' + ok('a'),
    args: ['--config', 'configs/nope.yaml'],
    expect: ['configs/nope.yaml: error[file-missing]: cannot read config configs/nope.yaml: no such file'],
  },
  {
    name: 'custom tag !!js/function is refused',
    pipeline: 'stages:\n  a:\n    kind: command\n    params:\n      cmd: !!js/function "function () { return 1 }"\n',
    expect: ['pipelines/p.yaml:5:12: error[yaml-tag]: unsupported YAML tag', 'js/function'],
  },
  {
    name: 'alias bomb (billion laughs) is refused quickly',
    pipeline: [
      'l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]',
      ...Array.from({ length: 9 }, (_, i) => `l${i + 1}: &l${i + 1} [${Array(10).fill(`*l${i}`).join(', ')}]`),
      'stages:',
      '  a:',
      '    kind: command',
      '    params: { cmd: x, env: { v: *l9 } }',
      '',
    ].join('\n'),
    expect: ['pipelines/p.yaml:1:1: error[yaml-aliases]: too many YAML alias expansions'],
    maxMs: 8000, // generous for a loaded machine; an actual expansion would take far longer (or run out of memory)
  },
  {
    name: 'bad output name',
    pipeline: 'stages:\n  a:\n    kind: command\n    params: { cmd: x, outputs: { 1bad: file } }\n',
    expect: ['pipelines/p.yaml:4:34: error[bad-name]: name "1bad" does not match'],
  },
  {
    name: 'bad output type',
    pipeline: 'stages:\n  a:\n    kind: command\n    params: { cmd: x, outputs: { o: folder } }\n',
    expect: [
      'pipelines/p.yaml:4:37: error[bad-value]: a.outputs.o must be one of "file", "dir", got the string "folder"',
    ],
  },
  {
    name: 'missing input file path',
    pipeline:
      'stages:\n  a:\n    kind: command\n    inputs:\n      t: { path: data/nope.txt }\n    params: { cmd: x }\n',
    expect: [
      "pipelines/p.yaml:5:18: error[input-missing]: input 't' of stage 'a' names data/nope.txt, which does not exist",
    ],
  },
  {
    name: 'several errors are reported at once, each with its place',
    pipeline:
      'stages:\n  a:\n    kind: comand\n    params: { cmd: x }\n  b:\n    kind: command\n    inputs: { n: zz.o }\n    params: { cmd: 5 }\n',
    expect: [
      'pipelines/p.yaml:3:11: error[unknown-kind]',
      'pipelines/p.yaml:8:20: error[wrong-type]',
      'pipelines/p.yaml:7:18: error[missing-reference]',
      '3 errors',
    ],
    count: 3,
  },
];

// Independent workspaces, so the cases run a few at a time (each is mostly CLI start-up).
describe('bad input', { concurrency: 4 }, () => {
  for (const c of cases) {
    test(c.name, async () => {
      const ws = makeWorkspace({ 'pipelines/p.yaml': c.pipeline, ...c.files });
      try {
        const t0 = Date.now();
        const r = await runCli(ws, ['run', 'pipelines/p.yaml', ...(c.args ?? [])]);
        const ms = Date.now() - t0;
        assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
        for (const e of c.expect) {
          if (typeof e === 'string')
            assert.ok(r.stderr.includes(e), `stderr should contain ${JSON.stringify(e)}; got:\n${r.stderr}`);
          else assert.match(r.stderr, e);
        }
        const n = (r.stderr.match(/error\[/g) ?? []).length;
        assert.equal(n, c.count ?? 1, `number of diagnostics; got:\n${r.stderr}`);
        assert.equal(r.stdout, '', 'nothing on stdout');
        assert.equal(existsSync(join(ws, 'results')), false, 'results/ must not be created');
        assert.equal(existsSync(join(ws, '.facepipe')), false, '.facepipe/ must not be created');
        if (c.maxMs) assert.ok(ms < c.maxMs, `took ${ms} ms`);
      } finally {
        removeWorkspace(ws);
      }
    });
  }
});

test('validate and status report the same diagnostics as run, also with exit code 2', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': 'stages:\n  a:\n    kind: comand\n' });
  try {
    for (const cmd of ['validate', 'status']) {
      const r = await runCli(ws, [cmd, 'pipelines/p.yaml']);
      assert.equal(r.code, 2, cmd);
      assert.match(r.stderr, /pipelines\/p\.yaml:3:11: error\[unknown-kind\]/);
    }
    assert.equal(existsSync(join(ws, '.facepipe')), false);
  } finally {
    removeWorkspace(ws);
  }
});

test('a FacepipeError from another copy of core/errors.js is one too (the bundled CLI and the stage kinds); a subclass is not every FacepipeError', async () => {
  // A second instance of the module, as the bundled CLI and dist/src/ each hold one.
  const copy = (await import(
    `../../src/core/errors.js?copy=${Date.now()}`
  )) as typeof import('../../src/core/errors.js');
  assert.notEqual(copy.FacepipeError, FacepipeError, 'a second copy of the module');
  const theirs = new copy.FacepipeError({ code: 'bad-option', message: 'from the other copy' });
  assert.ok(theirs instanceof FacepipeError);
  assert.ok(new FacepipeError({ code: 'x', message: 'ours' }) instanceof copy.FacepipeError);
  assert.ok(!(new Error('plain') instanceof FacepipeError));
  assert.ok(!(Object.create(null) instanceof FacepipeError));
  class Narrower extends FacepipeError {}
  assert.ok(!(theirs instanceof Narrower), 'a subclass keeps the prototype test');
  assert.ok(new Narrower({ code: 'x', message: 'n' }) instanceof Narrower);
});

test('the CLI runs as one bundled file: a run loads none of the load/plan/execute modules of dist/src/ on its own', async () => {
  const { modulesLoadedBy } = await import('./rig.js');
  const ws = makeWorkspace({ 'pipelines/p.yaml': `stages:\n${ok('a')}` });
  try {
    // A no-op rerun: no stage runs, so no worker process (the unbundled job side) logs its modules too.
    assert.equal((await runCli(ws, ['run', 'pipelines/p.yaml'])).code, 0);
    const r = modulesLoadedBy(ws, ['run', 'pipelines/p.yaml', '--progress', 'json']);
    assert.equal(r.status, 0, r.stderr);
    const expected = /\/cli\/main\.js$|\/load\/validators\.generated\.js$/;
    const own = r.specifiers.filter((s) => /\/(load|plan|execute|cli)\/[^/]+\.js$/.test(s) && !expected.test(s));
    assert.deepEqual(own, [], 'modules the bundle should hold');
    assert.ok(
      r.specifiers.some((s) => s.endsWith('/stages/command/kind.js')),
      'the kinds stay separate modules',
    );
  } finally {
    removeWorkspace(ws);
  }
});
