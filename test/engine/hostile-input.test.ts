// Hostile or careless input (issue 8, points 6, 7 and 8): exit 2, a clear message with file:line:col where there
// is a file, the fix, and nothing written (no .facepipe/, no results/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { countPoints } from '../../src/plan/sweep.js';
import { makeWorkspace, removeWorkspace, runCli, type CliResult } from './rig.js';

const PIPELINE = `name: hostile
stages:
  a:
    kind: command
    params:
      cmd: 'echo "$X" > {outputs.o}'
      outputs: { o: file }
      env: { X: 1 }
`;

/** Exit 2, the message matches, and the workspace holds nothing but what the test put there. */
function assertRefused(ws: string, r: CliResult, message: RegExp, files = ['pipelines']): void {
  assert.equal(r.code, 2, `exit ${r.code}\n${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at .*\.js:\d+/, 'no stack trace');
  assert.deepEqual(readdirSync(ws).sort(), files, 'nothing written (no .facepipe/, no results/)');
}

async function refused(
  args: string[],
  message: RegExp,
  files: Record<string, string | Buffer> = {},
  timeoutMs = 20_000,
): Promise<CliResult> {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
  try {
    for (const [rel, content] of Object.entries(files)) writeFileSync(join(ws, rel), content);
    const r = await runCli(ws, args, timeoutMs);
    const top = [...new Set(['pipelines', ...Object.keys(files).map((f) => f.split('/')[0])])].sort();
    assertRefused(ws, r, message, top);
    return r;
  } finally {
    removeWorkspace(ws);
  }
}

const runArgs = (...extra: string[]) => ['run', 'pipelines/p.yaml', '--progress', 'json', ...extra];

// 6. Unbounded work: counted before anything is expanded.
test('a grid of 10^6 points is refused at once, with the count and how to raise the limit', async () => {
  await refused(
    runArgs('--sweep', 'a.env.X=range(1,1000,1)', '--sweep', 'a.env.Y=range(1,1000,1)'),
    /error\[too-many-points\]: the sweep has 1,000,000 points \(a\.env\.X: 1,000, a\.env\.Y: 1,000\); the limit is 10,000\n.*fix: .*--max-points 1000000/,
  );
});

for (const range of ['range(1e17,2e17,1)', 'range(0,1,1e-12)'])
  test(`--sweep ${range} is refused with its count, never expanded`, async () => {
    await refused(runArgs('--sweep', `a.env.X=${range}`), /error\[too-many-points\]: the sweep has [\d,]+ points/);
  });

test('--max-points raises the limit (and lowers it)', async () => {
  await refused(runArgs('--sweep', 'a.env.X=1,2,3', '--max-points', '2'), /the sweep has 3 points .*the limit is 2/);
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
  try {
    const r = await runCli(ws, ['status', 'pipelines/p.yaml', '--sweep', 'a.env.X=1,2,3', '--max-points', '3']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sweep: 3 experiments/);
  } finally {
    removeWorkspace(ws);
  }
  const big = {
    method: 'grid' as const,
    seed: 0,
    params: { 'a.x': { range: [1, 20_000, 1] as [number, number, number] } },
  };
  assert.throws(() => countPoints(big), /the sweep has 20,000 points .*the limit is 10,000/);
  assert.equal(countPoints(big, 20_000), 20_000);
});

test('a sweep with zero points is a clear error', async () => {
  await refused(
    runArgs('--sweep', 'a.env.X=range(5,1,1)'),
    /command line: error\[bad-sweep\]: sweep a\.env\.X: has no values, so the sweep has no points\n {2}at key: --sweep a\.env\.X=range\(5,1,1\)/,
  );
  await refused(
    ['run', 'pipelines/s.yaml', '--progress', 'json'],
    /pipelines\/s\.yaml:11:14: error\[bad-sweep\]: sweep a\.env\.X: has no values/,
    { 'pipelines/s.yaml': `${PIPELINE}sweep:\n  params:\n    a.env.X: { range: [3, 1, 1] }\n` },
  );
});

test('a pipeline or config file over 1 MiB is refused, naming it; nothing goes to the parse cache', async () => {
  const big = `${PIPELINE}# ${'x'.repeat(1024 * 1024)}\n`;
  await refused(
    ['run', 'pipelines/big.yaml', '--progress', 'json'],
    /pipelines\/big\.yaml: error\[file-too-large\]: pipeline pipelines\/big\.yaml is 1\.0 MiB; pipeline, config and sweep files may be at most 1 MiB/,
    { 'pipelines/big.yaml': big },
  );
  await refused(runArgs('--config', 'big.yaml'), /big\.yaml: error\[file-too-large\]: config big\.yaml is/, {
    'big.yaml': `a: {}\n# ${'y'.repeat(2 * 1024 * 1024)}\n`,
  });
});

// 7. __proto__ and friends.
test('__proto__ in a config is refused with file:line:col (it used to unset a param silently)', async () => {
  await refused(
    runArgs('--config', 'c.yaml'),
    /c\.yaml:3:5: error\[forbidden-key\]: key '__proto__' is not allowed .*\n {2}at key: a\.env\.__proto__/,
    { 'c.yaml': 'a:\n  env:\n    __proto__: { X: 5 }\n' },
  );
  await refused(runArgs('--config', 'c.yaml'), /c\.yaml:2:3: error\[forbidden-key\]: key 'constructor'/, {
    'c.yaml': 'a:\n  constructor: 1\n',
  });
});

for (const set of ['__proto__.x=1', 'a.__proto__.x=1', 'a.env.constructor=1', 'a.prototype=2'])
  test(`--set ${set} is refused and pollutes nothing`, async () => {
    const r = await refused(
      runArgs('--set', set),
      new RegExp(
        `command line: error\\[bad-set\\]: bad --set "${set.replace(/[.]/g, '\\.')}": '\\w+' is not allowed in a key`,
      ),
    );
    assert.doesNotMatch(r.stderr, /p\.yaml:\d+/, 'no unrelated line of another file is blamed');
  });

test('--sweep __proto__.x=1,2 is refused too', async () => {
  await refused(runArgs('--sweep', '__proto__.x=1,2'), /error\[bad-sweep\]: .*'__proto__' is not allowed/);
});

// 8. Other values that got through.
test('--set a.env.X=.inf is a clear exit-2 error (no record left at "running")', async () => {
  await refused(
    runArgs('--set', 'a.env.X=.inf'),
    /error\[bad-value\]: a\.env\.X is Infinity; params must be finite numbers/,
  );
  await refused(runArgs('--set', 'a.env.X=.nan'), /a\.env\.X is NaN; params must be finite/);
  await refused(runArgs('--config', 'c.yaml'), /c\.yaml:1:16: error\[bad-value\]: a\.env\.X is -Infinity/, {
    'c.yaml': 'a: { env: { X: -.inf } }\n',
  });
});

test('non-finite sweep values are refused too', async () => {
  await refused(
    runArgs('--sweep', 'a.env.X=1,.inf'),
    /error\[bad-sweep\]: --sweep a\.env\.X=1,\.inf: values must be finite/,
  );
  await refused(
    ['run', 'pipelines/s.yaml', '--progress', 'json'],
    /pipelines\/s\.yaml:11:18: error\[bad-sweep\]: sweep param 'a\.env\.X': values must be finite numbers/,
    { 'pipelines/s.yaml': `${PIPELINE}sweep:\n  params:\n    a.env.X: [1, .nan]\n` },
  );
});

test('a 300-character stage name is refused before anything is written', async () => {
  const long = 's'.repeat(300);
  await refused(
    ['run', 'pipelines/long.yaml', '--progress', 'json'],
    /pipelines\/long\.yaml:3:3: error\[bad-name\]: name "s{300}" does not match .*\n(.*\n)* {2}fix: .*at most 64 characters/,
    { 'pipelines/long.yaml': PIPELINE.replace('  a:', `  ${long}:`).replace('name: hostile\n', 'name: hostile\n') },
  );
});

test('a 300-character or multi-line experiment name is refused before anything is written', async () => {
  await refused(
    runArgs('-e', 'e'.repeat(300)),
    /command line: error\[bad-name\]: .* it is 300 bytes long; at most 100/,
  );
  await refused(runArgs('-e', 'two\nlines'), /error\[bad-name\]: experiment name "two\\nlines" .*control character/);
  await refused(
    ['run', 'pipelines/n.yaml', '--progress', 'json'],
    /pipelines\/n\.yaml:1:7: error\[bad-name\]: name "two\\nlines" does not match/,
    { 'pipelines/n.yaml': PIPELINE.replace('name: hostile', 'name: "two\\nlines"') },
  );
  const longFile = `pipelines/${'f'.repeat(200)}.yaml`;
  await refused(['run', longFile, '--progress', 'json'], /error\[bad-name\]: experiment name "f+…" .*at most 100/, {
    [longFile]: PIPELINE.replace('name: hostile\n', ''),
  });
});

test('non-UTF-8 bytes in a YAML file are an error with their position, not replaced silently', async () => {
  const bytes = Buffer.concat([Buffer.from(PIPELINE.replace('echo', 'echo caf')), Buffer.from([0xe9, 0x0a])]);
  const at = bytes.indexOf(0xe9);
  const r = await refused(
    ['run', 'pipelines/latin1.yaml', '--progress', 'json'],
    new RegExp(
      `pipelines/latin1\\.yaml:9:1: error\\[not-utf8\\]: pipeline pipelines/latin1\\.yaml is not valid UTF-8: byte 0xe9 at offset ${at}`,
    ),
    { 'pipelines/latin1.yaml': bytes },
  );
  assert.match(r.stderr, /fix: save the file as UTF-8/);
  const mid = Buffer.from('a:\n  env: { X: "caf\xe9" }\n', 'latin1');
  await refused(runArgs('--config', 'c.yaml'), /c\.yaml:2:17: error\[not-utf8\]/, { 'c.yaml': mid });
});

for (const [option, value] of [
  ['--samples', 'abc'],
  ['--samples', '0'],
  ['--sweep-seed', 'abc'],
  ['--sweep-seed', '1.5'],
  ['--max-points', 'abc'],
  ['--max-points', '-1'],
  ['--jobs', '0'],
  ['--max-memory', 'abc'],
])
  test(`${option} ${value} is refused`, async () => {
    await refused(
      runArgs('--sweep', 'a.env.X=1,2', option, value),
      new RegExp(`command line: error\\[bad-option\\]: ${option} "${value.replace('.', '\\.')}": expected`),
    );
  });

test('a usage error of the command line exits 2', async () => {
  await refused(['run', '--no-such-option'], /unknown option '--no-such-option'/);
});

test('a pipeline that is not a regular file is refused, not read forever', async () => {
  const ws = makeWorkspace({ 'pipelines/p.yaml': PIPELINE });
  try {
    const r = await runCli(ws, ['validate', '/dev/zero'], 10_000);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /pipeline \/dev\/zero is not a regular file/);
    assert.equal(existsSync(join(ws, '.facepipe')), false);
  } finally {
    removeWorkspace(ws);
  }
});
