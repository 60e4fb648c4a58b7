// npm run bench:engine — start-up and no-op rerun cost of the CLI, and file hashing throughput,
// each printed next to a peer measured in the same script (node -e 0; openssl dgst -sha256); --json prints one
// object instead.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomFillSync } from 'node:crypto';
import { hashFile } from '../src/core/hash.js';

const repo = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const cli = join(repo, 'dist/src/cli/main.js');
const REPS = Number(process.env.BENCH_REPS ?? 9);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function wall(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr.toString()}`);
  return ms;
}

function chainPipeline(n: number): string {
  // A layered graph: each stage reads the previous one, every fifth also reads the first (fan-in).
  const lines = ['name: bench', 'stages:'];
  for (let i = 0; i < n; i++) {
    lines.push(`  s${i}:`, '    kind: command');
    const ins: string[] = [];
    if (i === 0) ins.push('src: { path: data/input.txt }');
    if (i > 0) ins.push(`prev: s${i - 1}.out`);
    if (i > 1 && i % 5 === 0) ins.push('first: s0.out');
    lines.push(`    inputs: { ${ins.join(', ')} }`);
    lines.push(`    params: { cmd: 'echo ${i} > "$FACEPIPE_OUT_out"', outputs: { out: file } }`);
  }
  return lines.join('\n') + '\n';
}

/** A workspace for a no-op rerun: n command stages, or 0 for the face-verification pipeline on the tiny config. */
function rerunWorkspace(n: number, from: string): { ws: string; args: string[] } {
  const ws = mkdtempSync(join(tmpdir(), `fp-bench-${n}-`));
  const args = n
    ? ['run', 'pipelines/p.yaml', '--progress', 'plain']
    : ['run', '--config', 'configs/tiny.yaml', '--progress', 'plain'];
  if (n) {
    mkdirSync(join(ws, 'pipelines'));
    mkdirSync(join(ws, 'data'));
    writeFileSync(join(ws, 'data/input.txt'), 'x\n');
    writeFileSync(join(ws, 'pipelines/p.yaml'), chainPipeline(n));
  } else {
    // Each CLI reruns its own checkout's pipeline and configs (an older one may not know newer params).
    for (const d of ['pipelines', 'configs', 'data/cmu-faces']) cpSync(join(from, d), join(ws, d), { recursive: true });
  }
  return { ws, args };
}

/** Did this CLI load TensorFlow.js? A resolve hook records every specifier. */
function loadsTfjs(cliPath: string, ws: string, args: string[], env: NodeJS.ProcessEnv): boolean {
  const log = join(ws, 'imports.log');
  const hook = join(ws, 'hook.mjs');
  writeFileSync(
    hook,
    `import { appendFileSync } from 'node:fs';\nexport async function resolve(s, c, next) { appendFileSync(${JSON.stringify(log)}, s + '\\n'); return next(s, c); }\n`,
  );
  const reg = join(ws, 'register.mjs');
  writeFileSync(
    reg,
    `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n`,
  );
  execFileSync(process.execPath, ['--import', pathToFileURL(reg).href, cliPath, ...args], {
    cwd: ws,
    env,
    stdio: 'ignore',
  });
  return existsSync(log) && readFileSync(log, 'utf8').includes('@tensorflow');
}

interface Rerun {
  median: number;
  min: number;
  tfjsLoaded: boolean;
}

/**
 * No-op reruns of each CLI (ours first, then --against's), each in its own workspace, interleaved rep by rep so
 * that a change in the machine's load hits both alike.
 */
function noopRerun(n: number, clis: string[]): Rerun[] {
  const env = { ...process.env, CI: '1' };
  const spaces = clis.map((c) => rerunWorkspace(n, resolve(dirname(c), '../../..')));
  try {
    clis.forEach((c, i) =>
      execFileSync(process.execPath, [c, ...spaces[i].args, '--jobs', '2'], {
        cwd: spaces[i].ws,
        env,
        stdio: 'ignore',
      }),
    );
    const times = clis.map(() => [] as number[]);
    for (let r = 0; r < REPS; r++)
      clis.forEach((c, i) => times[i].push(wall(process.execPath, [c, ...spaces[i].args], { cwd: spaces[i].ws, env })));
    return clis.map((c, i) => ({
      median: median(times[i]),
      min: Math.min(...times[i]),
      tfjsLoaded: loadsTfjs(c, spaces[i].ws, spaces[i].args, env),
    }));
  } finally {
    for (const s of spaces) rmSync(s.ws, { recursive: true, force: true });
  }
}

/**
 * facepipe verify (start-up, two images embedded, the threshold looked up) on the tiny pipeline's model: on
 * onnxruntime (which loads no TF.js) and with --runtime tfjs, each next to node -e 0.
 */
function verifyTimes(): Record<'onnx' | 'tfjs', number | string> {
  const ws = mkdtempSync(join(tmpdir(), 'fp-bench-verify-'));
  try {
    for (const d of ['pipelines', 'configs', 'data/cmu-faces']) cpSync(join(repo, d), join(ws, d), { recursive: true });
    const env = { ...process.env, CI: '1' };
    execFileSync(process.execPath, [cli, 'run', '--config', 'configs/tiny.yaml', '--progress', 'plain'], {
      cwd: ws,
      env,
      stdio: 'ignore',
    });
    const faces = 'data/cmu-faces/an2i';
    const pair = [`${faces}/an2i_left_angry_open_2.pgm`, `${faces}/an2i_right_happy_open_2.pgm`];
    const time = (runtime: string) => {
      const args = [cli, 'verify', ...pair, '--runtime', runtime];
      // Exit 1 (different) is a result, not a failure: time it without wall()'s status check.
      const once = () => {
        const t0 = process.hrtime.bigint();
        const r = spawnSync(process.execPath, args, { cwd: ws, env, stdio: ['ignore', 'pipe', 'pipe'] });
        if (r.status !== 0 && r.status !== 1) throw new Error(`verify --runtime ${runtime}: ${r.stderr.toString()}`);
        return Number(process.hrtime.bigint() - t0) / 1e6;
      };
      return median(Array.from({ length: REPS }, once));
    };
    let onnx: number | string;
    try {
      onnx = time('onnx');
    } catch (e) {
      onnx = (e as Error).message.split('\n')[0];
    }
    return { onnx, tfjs: time('tfjs') };
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}

async function hashing(): Promise<{ ours: number; openssl: number | undefined }> {
  const dir = mkdtempSync(join(tmpdir(), 'fp-bench-hash-'));
  try {
    const file = join(dir, 'blob.bin');
    const buf = Buffer.allocUnsafe(100 * 1024 * 1024);
    randomFillSync(buf);
    writeFileSync(file, buf);
    const mb = buf.length / (1024 * 1024);
    const ours: number[] = [];
    const peer: number[] = [];
    const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
    for (let i = 0; i < 5; i++) {
      const t0 = process.hrtime.bigint();
      await hashFile(file);
      ours.push(mb / (Number(process.hrtime.bigint() - t0) / 1e9));
      if (hasOpenssl) peer.push(mb / (wall('openssl', ['dgst', '-sha256', file]) / 1000));
    }
    return { ours: median(ours), openssl: hasOpenssl ? median(peer) : undefined };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const asJson = process.argv.includes('--json');
// --against <checkout>: a built facepipe (e.g. a worktree of an older commit) whose no-op reruns run beside ours.
const againstAt = process.argv.indexOf('--against');
const against = againstAt > 0 ? join(resolve(process.argv[againstAt + 1] ?? ''), 'dist/src/cli/main.js') : undefined;
if (against && !existsSync(against)) {
  console.error(`--against: ${against} does not exist; build that checkout first (npm ci && npm run build)`);
  process.exit(2);
}
const out = (line: string) => {
  if (!asJson) console.log(line);
};
const nodeBare = median(Array.from({ length: REPS }, () => wall(process.execPath, ['-e', '0'])));
out(`node -e 0                         ${nodeBare.toFixed(0).padStart(5)} ms (median of ${REPS})`);
const reruns: Array<Record<string, number | string | boolean>> = [];
for (const [n, goal] of [
  [5, 350],
  [50, 600],
  [0, 350],
] as const) {
  const [r, peer] = noopRerun(n, against ? [cli, against] : [cli]);
  reruns.push({
    stages: n || 'face-verification (tiny)',
    median_ms: r.median,
    min_ms: r.min,
    goal_ms: goal,
    tfjs_loaded: r.tfjsLoaded,
    ...(peer && { against_median_ms: peer.median, against_min_ms: peer.min }),
  });
  const what = n ? `${String(n).padStart(2)}-stage pipeline     ` : 'face-verification (tiny)';
  out(
    `no-op rerun, ${what} ${r.median.toFixed(0).padStart(5)} ms (min ${r.min.toFixed(0)}; goal <= ${goal} ms: ${r.median <= goal ? 'met' : 'MISSED'}; ${(r.median / nodeBare).toFixed(2)}x node -e 0)`,
  );
  if (peer)
    out(
      `  --against, same workspace shape    ${peer.median.toFixed(0).padStart(5)} ms (min ${peer.min.toFixed(0)}) -> ours ${(r.median / peer.median).toFixed(2)}x`,
    );
  out(`  TensorFlow.js loaded by the CLI:  ${r.tfjsLoaded ? 'YES (should not be)' : 'no'}`);
}
const v = verifyTimes();
for (const [runtime, ms] of Object.entries(v)) {
  const label = `verify A B, runtime ${runtime}`.padEnd(33);
  out(
    typeof ms === 'number'
      ? `${label} ${ms.toFixed(0).padStart(5)} ms (median of ${REPS}; ${(ms / nodeBare).toFixed(2)}x node -e 0)`
      : `${label} not measured: ${ms}`,
  );
}
const h = await hashing();
out(`sha256 of a 100 MB file, facepipe  ${h.ours.toFixed(0).padStart(5)} MB/s`);
if (h.openssl)
  out(
    `sha256, openssl dgst -sha256       ${h.openssl.toFixed(0).padStart(5)} MB/s  -> ratio ${(h.ours / h.openssl).toFixed(2)} (goal >= 0.80: ${h.ours / h.openssl >= 0.8 ? 'met' : 'MISSED'})`,
  );
else out('openssl not found: no peer figure');
if (asJson)
  console.log(
    JSON.stringify({
      reps: REPS,
      node_e0_ms: nodeBare,
      noop_rerun: reruns,
      verify_ms: v,
      sha256_mb_per_s: { facepipe: h.ours, openssl: h.openssl ?? null },
    }),
  );
