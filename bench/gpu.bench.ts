// The GPU check (issue 11): one script that finishes within 8 minutes on a machine with an NVIDIA GPU.
//   1. facepipe doctor (the WebGPU adapter must be a hardware one);
//   2. the tiny face pipeline end to end with --backend webgpu (evaluate embedding with TF.js, so on webgpu too);
//   3. training throughput on webgpu, EfficientNet-B0 + Dense(512), at 64 px batch 32, 128 px batch 64 and
//      224 px batch 128 (micro-batched when the adapter's binding limit asks), with dispatches per step;
//   4. next to PyTorch (bench/torch_train.py on CUDA) when python3 has torch with CUDA.
// Every figure printed is measured by this run; none is carried over or estimated.
//
//   npm run bench:gpu                 the check (refuses a software adapter: its speed says nothing of a GPU)
//   npm run bench:gpu -- --tiny       a rehearsal of the script itself in a minute, on any adapter (software too:
//                                     uses .software-adapter/ when present), B0 at 32 px batch 4, PyTorch on CPU
//   --json                            the figures as one JSON object on stdout
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/core/package-root.js';

const BUDGET_MS = 8 * 60_000;
const started = Date.now();
const tiny = process.argv.includes('--tiny');
const json = process.argv.includes('--json');
const root = packageRoot();
const say = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);
const left = () => BUDGET_MS - (Date.now() - started);

interface Row {
  size: number;
  batch: number;
  webgpu?: { imgPerSec: number; stepMs: number; dispatches?: number; stockDispatches?: number; microBatch?: number };
  pytorch?: { imgPerSec: number; stepMs: number; detail: string };
  note?: string;
}

const CONFIGS: Array<{ size: number; batch: number; steps: number }> = tiny
  ? [{ size: 32, batch: 4, steps: 1 }]
  : [
      { size: 64, batch: 32, steps: 5 },
      { size: 128, batch: 64, steps: 5 },
      { size: 224, batch: 128, steps: 5 },
    ];

function run(cmd: string, args: string[], timeoutMs: number, cwd = root) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: Math.max(1000, timeoutMs), maxBuffer: 64 << 20 });
  const timedOut = r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT';
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', timedOut };
}

const resultLine = <T>(stdout: string): T | undefined => {
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  return line ? (JSON.parse(line.slice(7)) as T) : undefined;
};
const tail = (s: string) =>
  s
    .split('\n')
    .filter((l) => l.trim() && !/^Warning: max|XDG_RUNTIME_DIR/.test(l))
    .slice(-4)
    .join(' | ');

function useSoftwareAdapterForRehearsal(): void {
  const file = join(root, '.software-adapter', 'env.json');
  if (!tiny || process.env.VK_ICD_FILENAMES || !existsSync(file)) return;
  const { env } = JSON.parse(readFileSync(file, 'utf8')) as { env: Record<string, string> };
  Object.assign(process.env, env);
  say('(--tiny: using the software adapter in .software-adapter/)');
}

function doctor(): { ok: boolean; software: boolean; text: string } {
  const r = run(process.execPath, [join(root, 'dist/src/cli/main.js'), 'doctor'], 60_000);
  const line = r.stdout.split('\n').find((l) => /^(ok|no)\s+webgpu/.test(l)) ?? '';
  return { ok: line.startsWith('ok'), software: /software/.test(line), text: r.stdout.trimEnd() };
}

function pipeline(): { ok: boolean; seconds: number; summary: string } {
  const ws = mkdtempSync(join(tmpdir(), 'facepipe-gpu-check-'));
  try {
    for (const d of ['pipelines', 'configs', 'data/cmu-faces']) cpSync(join(root, d), join(ws, d), { recursive: true });
    const t0 = Date.now();
    const cli = join(root, 'dist/src/cli/main.js');
    const r = run(
      process.execPath,
      [
        cli,
        'run',
        '--config',
        'configs/tiny.yaml',
        '--backend',
        'webgpu',
        '--set',
        'evaluate.runtime=tfjs',
        '--progress',
        'plain',
      ],
      Math.min(180_000, left() - 60_000),
      ws,
    );
    const evaluate = r.stdout.split('\n').find((l) => l.startsWith('evaluate: ')) ?? '';
    return {
      ok: r.code === 0,
      seconds: (Date.now() - t0) / 1000,
      summary: r.code === 0 ? evaluate : tail(r.stderr || r.stdout),
    };
  } finally {
    rmSync(ws, { recursive: true, force: true });
  }
}

function torchPython(): string | undefined {
  for (const py of ['python3', '/usr/bin/python3']) {
    const probe = run(py, ['-c', 'import torch; print("CUDA" if torch.cuda.is_available() else "CPU")'], 60_000);
    if (probe.code === 0 && (tiny || probe.stdout.includes('CUDA'))) return py;
  }
  return undefined;
}

function trainRow(c: (typeof CONFIGS)[number], first: boolean, python: string | undefined): Row {
  const row: Row = { size: c.size, batch: c.batch };
  const budget = left() - 20_000;
  if (budget < 30_000) return { ...row, note: 'skipped: the 8-minute budget is spent' };
  const args = ['--child', 'webgpu', '--size', String(c.size), '--batch', String(c.batch), '--steps', String(c.steps)];
  if (!first || tiny) args.push('--no-stock');
  const r = run(process.execPath, [join(root, 'dist/bench/train.bench.js'), ...args], budget);
  const w = resultLine<{
    imgPerSec: number;
    stepMs: number[];
    dispatches?: number;
    stockDispatches?: number;
    microBatch?: number;
  }>(r.stdout);
  if (w) {
    const stepMs = [...w.stepMs].sort((a, b) => a - b)[Math.floor(w.stepMs.length / 2)];
    row.webgpu = {
      imgPerSec: w.imgPerSec,
      stepMs,
      dispatches: w.dispatches,
      stockDispatches: w.stockDispatches,
      microBatch: w.microBatch,
    };
  } else row.note = r.timedOut ? 'webgpu: out of time' : `webgpu failed: ${tail(r.stderr || r.stdout)}`;
  if (python && left() > 30_000) {
    const device = tiny ? 'cpu' : 'cuda';
    const t = run(
      python,
      [
        join(root, 'bench/torch_train.py'),
        '--device',
        device,
        '--size',
        String(c.size),
        '--batch',
        String(c.batch),
        '--steps',
        String(c.steps),
      ],
      left() - 15_000,
    );
    const p = resultLine<{ imgPerSec: number; stepMs: number[]; detail: string }>(t.stdout);
    if (p)
      row.pytorch = {
        imgPerSec: p.imgPerSec,
        stepMs: [...p.stepMs].sort((a, b) => a - b)[Math.floor(p.stepMs.length / 2)],
        detail: p.detail,
      };
    else row.note = [row.note, `PyTorch failed: ${tail(t.stderr)}`].filter(Boolean).join('; ');
  }
  return row;
}

function table(rows: Row[]): string[] {
  const f = (v: number | undefined, d = 1) => (v === undefined ? '-' : v.toFixed(d));
  const out = [
    '| B0 + Dense(512) | webgpu img/s | webgpu ms/step | dispatches/step (stock) | micro-batch | PyTorch img/s | webgpu / PyTorch | note |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const w = r.webgpu;
    const p = r.pytorch;
    const disp =
      w?.dispatches === undefined ? '-' : `${w.dispatches}${w.stockDispatches ? ` (${w.stockDispatches})` : ''}`;
    const ratio = w && p ? (w.imgPerSec / p.imgPerSec).toFixed(2) : '-';
    out.push(
      `| ${r.size} px, batch ${r.batch} | ${f(w?.imgPerSec)} | ${f(w?.stepMs, 0)} | ${disp} | ${w?.microBatch ?? '-'} | ${f(p?.imgPerSec)} | ${ratio} | ${r.note ?? ''} |`,
    );
  }
  return out;
}

function main(): number {
  useSoftwareAdapterForRehearsal();
  say(`bench:gpu${tiny ? ' --tiny (a rehearsal: figures from it say nothing about a GPU)' : ''}, budget 8 minutes`);
  const doc = doctor();
  say(doc.text);
  if (!doc.ok) {
    say('\nno WebGPU adapter: this check needs a GPU with a Vulkan driver (see doctor above); nothing was measured');
    return 1;
  }
  if (doc.software && !tiny) {
    say(
      '\nonly a software adapter: this check needs a hardware GPU (--tiny rehearses the script); nothing was measured',
    );
    return 1;
  }
  say('\ntiny pipeline on webgpu...');
  const pipe = pipeline();
  say(`  ${pipe.ok ? 'ok' : 'FAILED'} in ${pipe.seconds.toFixed(1)} s: ${pipe.summary}`);
  const python = torchPython();
  if (!python)
    say(
      tiny
        ? 'PyTorch: not found (python3 with torch)'
        : 'PyTorch: no python3 with CUDA-enabled torch: no PyTorch column',
    );
  const rows: Row[] = [];
  CONFIGS.forEach((c, i) => {
    say(`training B0 ${c.size} px, batch ${c.batch}...`);
    rows.push(trainRow(c, i === 0, python));
  });
  say('');
  for (const line of table(rows)) say(line);
  const torchDetail = rows.find((r) => r.pytorch)?.pytorch?.detail;
  if (torchDetail) say(`PyTorch: ${torchDetail} (fp32 eager, default settings)`);
  say(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (json)
    process.stdout.write(
      JSON.stringify({ tiny, doctor: doc.text, pipeline: pipe, rows, seconds: (Date.now() - started) / 1000 }) + '\n',
    );
  return pipe.ok && rows.every((r) => r.webgpu) ? 0 : 1;
}

process.exitCode = main();
