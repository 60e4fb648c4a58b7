// A full disk: the run ends with a clear error naming the file it could not write (exit 1), run.json never
// stays 'running', no temporary file is left behind, and once there is space again a plain rerun completes.
// The workspace lives on a small tmpfs (mount -t tmpfs needs root; CI runs as root), filled to several levels.
// Also the sweep of temporary files that dead writers left: removed, and only those.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostTag } from '../../src/core/fsutil.js';
import { deadPid, finalStates, listFiles, makeWorkspace, removeWorkspace, run, runCli, writeFiles } from './rig.js';

const SIZE = 2 * 1024 * 1024;
const CONTENT = 300_000; // bytes of the first stage's output: the store and results/ each hold a copy

const PIPELINE = `name: full
stages:
  a:
    kind: command
    params: { cmd: "yes abcdefgh | head -c ${CONTENT} > {outputs.o}", outputs: { o: file } }
  b:
    kind: command
    inputs: { a: a.o }
    params: { cmd: "cp {inputs.a} {outputs.d}/x && echo hi > {outputs.d}/y", outputs: { d: dir } }
`;

function mountTmpfs(): string {
  const dir = mkdtempSync(join(tmpdir(), 'facepipe-full-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(
      `this test needs a small tmpfs to fill (run as root, as CI does: mount -t tmpfs): ${r.stderr || r.error?.message}`,
    );
  return dir;
}

function unmount(dir: string): void {
  spawnSync('umount', [dir]);
  rmSync(dir, { recursive: true, force: true });
}

/** Fill the filesystem until `free` bytes are left (to a page). */
function fill(dir: string, free: number): void {
  const st = statfsSync(dir);
  const avail = st.bavail * st.bsize;
  if (avail > free) writeFileSync(join(dir, 'filler'), Buffer.alloc(avail - free));
}

const tempNames = (ws: string) => listFiles(ws).filter((f) => /\.tmp-\d+-|\.stale/.test(f));

test('disk full at many levels: a clear error naming the file, no run.json left running, no temp files; the rerun completes', async (t) => {
  const mnt = mountTmpfs();
  const outcomes: string[] = [];
  try {
    for (const free of [0, 4096, 8192, 12288, 16384, 32768, 200_000, 400_000, 700_000, 1_100_000]) {
      for (const e of readdirSync(mnt)) rmSync(join(mnt, e), { recursive: true, force: true });
      writeFiles(mnt, { 'pipelines/p.yaml': PIPELINE });
      fill(mnt, free);
      const r = await run(mnt, 'pipelines/p.yaml');
      const at = `with ${free} bytes free`;
      assert.ok(r.code === 0 || r.code === 1, `${at}: exit ${r.code}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /ENOSPC: no space left on device, \w+$/m, `${at}: a bare ENOSPC`);
      for (const line of r.stderr.split('\n').filter((l) => /ENOSPC|no space/i.test(l)))
        assert.match(line, /cannot write (into )?[.\w/-]+(\.\w+)?.*: no space left on device \(ENOSPC\)/, at);
      if (r.code === 1)
        assert.match(r.stderr, /cannot write|command exited with code/, `${at}: says what failed: ${r.stderr}`);
      for (const rec of listFiles(mnt).filter((f) => /^results\/runs\/[^/]+\/run\.json$/.test(f))) {
        const status = (JSON.parse(readFileSync(join(mnt, rec), 'utf8')) as { status: string }).status;
        assert.notEqual(status, 'running', `${at}: ${rec} says running`);
      }
      assert.deepEqual(tempNames(mnt), [], `${at}: temporary files left`);
      assert.ok(!listFiles(mnt).includes('.facepipe/lock'), `${at}: the lock is released`);
      outcomes.push(
        `${free} B free: exit ${r.code}${r.code ? ` (${/cannot write (?:into )?(\S+?):? /.exec(r.stderr)?.[1] ?? 'a stage'})` : ''}`,
      );

      rmSync(join(mnt, 'filler'), { force: true });
      const again = await run(mnt, 'pipelines/p.yaml');
      assert.equal(again.code, 0, `${at}, then with space: ${again.stderr}`);
      assert.ok(Object.values(finalStates(again.events)).every((s) => s === 'done' || s === 'cached'));
      assert.equal(
        readFileSync(join(mnt, 'results/full/b/d/x'), 'utf8'),
        'abcdefgh\n'.repeat(CONTENT / 9 + 1).slice(0, CONTENT),
      );
      assert.deepEqual(tempNames(mnt), []);
    }
    t.diagnostic(outcomes.join('; '));
    // The levels reach the runner's own writes as well as the stages': some fail, the roomiest succeed.
    assert.ok(outcomes.some((o) => o.includes('exit 1')) && outcomes.at(-1)!.endsWith('exit 0'), outcomes.join(', '));
  } finally {
    unmount(mnt);
  }
});

test('temporary files left by dead writers are swept at the start of a run, and only those', async () => {
  const ws = makeWorkspace({
    'pipelines/p.yaml':
      'stages:\n  a:\n    kind: command\n    params: { cmd: "echo a > {outputs.o}", outputs: { o: file } }\n',
  });
  try {
    const dead = deadPid();
    const me = hostTag();
    const other = me === '00000000' ? '11111111' : '00000000';
    const old = (Date.now() - 15 * 24 * 3600 * 1000) / 1000;
    const owner = (pid: number, host = hostname()) => JSON.stringify({ host, pid });
    const gone = [
      `.facepipe/state/stat-cache.json.tmp-${dead}-${me}-0a0b0c0d`, // this host, writer dead
      `results/runs/r1.run.json.tmp-${dead}-${me}-01020304`, // a run record's, beside the run folders
      `.facepipe/store/objects/ab/cdef.tmp-${dead}-${me}-01020304`,
      `.facepipe/work/k1/checkpoint/epoch-checkpoint.fpck.tmp-${dead}-${me}-01020304`,
      `.facepipe/tmp/run1-a/.facepipe-owner.json`, // a job folder whose writer is dead
      `.facepipe/state/last/x.json.tmp-${process.pid}-${other}-01020304`, // another host, but 15 days untouched
      `results/runs/r2.run.json.tmp-${dead}-0a0b0c0d`, // older name without a host: by age only
      `.facepipe/work/k2/epoch-checkpoint.fpck.${dead}.tmp`,
    ];
    const kept = [
      `.facepipe/state/stat-cache.json.tmp-${process.pid}-${me}-0a0b0c0d`, // its writer (this test) runs
      `.facepipe/store/stages/k.json.tmp-${dead}-${other}-01020304`, // another host's job may be writing
      `results/runs/r3.run.json.tmp-${dead}-0a0b0c0d`, // no host, recent
      // Inside a past run's folder (where an older facepipe wrote them): a run does not open every past run's
      // folder (gc does, below).
      `results/runs/r4/run.json.tmp-${dead}-${me}-01020304`,
      `.facepipe/work/k3/epoch-checkpoint.fpck.${dead}.tmp`,
      `.facepipe/tmp/run2-a/.facepipe-owner.json`, // a live writer
      `.facepipe/tmp/run3-a/.facepipe-owner.json`, // another host's writer
      `.facepipe/tmp/run4-a/o`, // no owner note, recent
      `.facepipe/work/k1/notes.txt`, // a stage's own scratch
    ];
    writeFiles(ws, Object.fromEntries([...gone, ...kept].map((f) => [f, 'x'])));
    writeFiles(ws, {
      '.facepipe/tmp/run1-a/.facepipe-owner.json': owner(dead),
      '.facepipe/tmp/run1-a/o': 'partial',
      '.facepipe/tmp/run2-a/.facepipe-owner.json': owner(process.pid),
      '.facepipe/tmp/run3-a/.facepipe-owner.json': owner(dead, 'another-host'),
    });
    for (const f of [gone[5], gone[6], gone[7]]) utimesSync(join(ws, f), old, old);

    const r = await run(ws, 'pipelines/p.yaml');
    assert.equal(r.code, 0, r.stderr);
    const left = listFiles(ws);
    for (const f of gone) assert.ok(!left.includes(f), `swept: ${f}`);
    assert.ok(!left.includes('.facepipe/tmp/run1-a/o'));
    for (const f of kept) assert.ok(left.includes(f), `kept: ${f}`);
    const warning = r.events.find((e) => e.type === 'warning' && /temporary file/.test(e.message));
    assert.ok(
      warning &&
        warning.type === 'warning' &&
        /removed 8 temporary file\(s\) left by processes that died/.test(warning.message),
      JSON.stringify(warning),
    );
    // gc looks inside the run folders too, and counts only folders as runs.
    const gc = await runCli(ws, ['gc']);
    assert.equal(gc.code, 0, gc.stderr);
    assert.ok(!listFiles(ws).includes(`results/runs/r4/run.json.tmp-${dead}-${me}-01020304`), 'gc swept r4');
    assert.match(gc.stdout, /kept 2 runs/, 'the r1-r3 names are files beside the runs: only r4 and this run are runs');
  } finally {
    removeWorkspace(ws);
  }
});
