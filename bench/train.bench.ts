// Training throughput: EfficientNet-B0 + 512-d embedding at 64 px, one step = forward + identity CE + batch-hard
// triplet + center loss + backward + Adam. Each TensorFlow.js backend runs in its own child process (clean peak
// RSS, one backend per process); PyTorch runs bench/torch_train.py when python3 with torch is found.
// wasm runs as the stages train: sharded over worker threads (--shards, default 2), once per worker count in
// --workers (default 1,2); its peak RSS is the whole process (main thread and all workers). `workers` is the
// thread count for PyTorch rows.
//
//   npm run bench:train                       all available backends + PyTorch
//   npm run bench:train -- --json             one JSON object: { rows: [{ backend, workers, batch, img_per_s, x_pytorch_2t, ... }] }
//   npm run bench:train -- --rounds 3          then 3 more rounds of wasm (2 workers) beside PyTorch (2 threads), one
//                                             after the other: the median ratio, since a shared host's speed drifts
//                                             between runs more than one step's noise
//   --warmup N (default 3), --steps N (default 8): untimed then timed steps, on every side (PyTorch too)
//   node dist/bench/train.bench.js --backends wasm --steps 5 --profile
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { BackendName } from '../src/ml/types.js';
import { packageRoot } from '../src/core/package-root.js';
import { shardedChild } from './sharded-train.js';

interface Result {
  backend: string;
  /** Worker threads (sharded wasm), threads (PyTorch), 1 otherwise. */
  workers?: number;
  phases?: Record<string, number>;
  detail: string;
  batch: number;
  steps: number;
  imgPerSec: number;
  /** From the fastest step: less sensitive to other processes on a shared machine. */
  bestImgPerSec?: number;
  stepMs: number[];
  cpuMsPerStep?: number;
  peakRssMb: number;
  profile?: Array<[string, number, number]>;
  error?: string;
}

// Steady-state steps: a stage trains for hundreds, so the first few (heap growth and its page faults, operator
// creation, JIT, kernel tuning) are run untimed, on every side alike.
const WARMUP = 3;
const STEPS = 8;
const INPUT = Number(process.argv.includes('--size') ? process.argv[process.argv.indexOf('--size') + 1] : 64);
const IDS_PER_BATCH = 8;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const repoRoot = packageRoot;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Runs in the child: one backend, warm-up then timed steps; prints one JSON line. */
async function child(backend: BackendName): Promise<void> {
  if (backend === 'webgpu') return (await import('./train-webgpu.js')).webgpuChild(arg, process.argv);
  const tf = await import('@tensorflow/tfjs-core');
  const { initBackend } = await import('../src/ml/backend/select.js');
  const { createTriarchyNet } = await import('../src/ml/model/index.js');
  const { triarchyLoss } = await import('../src/ml/losses/triarchy.js');
  const info = await initBackend(backend);
  // cpu is ~0.6 img/s: a short measurement at batch 8 is enough.
  const batch = Number(arg('batch') ?? (backend === 'cpu' ? 8 : 32));
  const steps = Number(arg('steps') ?? (backend === 'cpu' ? 1 : STEPS));
  const warmup = backend === 'cpu' ? 1 : Math.max(1, Number(arg('warmup') ?? WARMUP));
  const perId = Math.max(2, batch / IDS_PER_BATCH);
  const numClasses = Math.ceil(batch / perId);
  const net = createTriarchyNet({
    backbone: { width: 1, depth: 1, inputSize: INPUT, bnMomentum: 0.9, dropConnect: 0.2 },
    embeddingDim: 512,
    numClasses,
    seed: 0,
  });
  const x = tf.randomUniform([batch, INPUT, INPUT, 3], 0, 1, 'float32', 1) as import('@tensorflow/tfjs-core').Tensor4D;
  const labels = tf.tensor1d(
    Array.from({ length: batch }, (_, i) => Math.floor(i / perId)),
    'int32',
  );
  const optimizer = tf.train.adam(1e-3);
  const step = () => {
    const loss = optimizer.minimize(
      () => triarchyLoss(net.apply(x, true), labels, net.centers as import('@tensorflow/tfjs-core').Tensor2D).total,
      true,
      net.trainableVariables(),
    );
    loss!.dataSync();
    loss!.dispose();
  };
  for (let i = 0; i < warmup; i++) step(); // Adam slots, XNNPACK operators, JIT
  const times: number[] = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  const cpu = process.cpuUsage(cpu0);
  const result: Result = {
    backend,
    detail: `${info.version}, ${info.detail}`,
    batch,
    steps,
    stepMs: times.map((t) => Math.round(t)),
    imgPerSec: batch / (median(times) / 1000),
    bestImgPerSec: batch / (Math.min(...times) / 1000),
    cpuMsPerStep: Math.round((cpu.user + cpu.system) / 1000 / steps),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
  if (process.argv.includes('--profile')) result.profile = profileStep(tf, backend, step);
  console.log(`RESULT ${JSON.stringify(result)}`);
}

/** CPU time per kernel over one step (wraps every registered kernel of the backend). */
function profileStep(
  tf: typeof import('@tensorflow/tfjs-core'),
  backend: string,
  step: () => void,
): Array<[string, number, number]> {
  const totals = new Map<string, { ms: number; n: number }>();
  for (const k of tf.getKernelsForBackend(backend)) {
    const orig = k.kernelFunc;
    tf.unregisterKernel(k.kernelName, backend);
    tf.registerKernel({
      ...k,
      kernelFunc: (args: Parameters<typeof orig>[0]) => {
        const t = process.cpuUsage();
        const r = orig(args);
        const u = process.cpuUsage(t);
        const e = totals.get(k.kernelName) ?? { ms: 0, n: 0 };
        e.ms += (u.user + u.system) / 1000;
        e.n++;
        totals.set(k.kernelName, e);
        return r;
      },
    });
  }
  step();
  return [...totals]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, 15)
    .map(([k, v]) => [k, Math.round(v.ms), v.n]);
}

function runChild(backend: string, workers?: number): Result {
  const extra = ['steps', 'warmup', 'batch', 'size', 'shards'].flatMap((k) => (arg(k) ? [`--${k}`, arg(k)!] : []));
  if (process.argv.includes('--profile')) extra.push('--profile');
  if (workers) extra.push('--workers', String(workers));
  const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1], '--child', backend, ...extra], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) {
    const why = (r.stderr || r.stdout)
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('var Module'))
      .slice(-3)
      .join(' | ');
    return {
      backend,
      detail: '',
      batch: 0,
      steps: 0,
      imgPerSec: 0,
      stepMs: [],
      peakRssMb: 0,
      error: why.slice(0, 300) || `exit ${r.status}`,
    };
  }
  return JSON.parse(line.slice(7)) as Result;
}

/** PyTorch with `threads` threads; a string says why there is no figure. */
function runTorch(threads: number): Result | string {
  const script = join(repoRoot(), 'bench', 'torch_train.py');
  // A pyenv/venv python3 may lack Debian's python3-torch: try the system one too.
  for (const python of ['python3', '/usr/bin/python3']) {
    const probe = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
    if (probe.status !== 0) continue;
    const r = spawnSync(
      python,
      [
        script,
        '--batch',
        arg('batch') ?? '32',
        '--size',
        String(INPUT),
        '--threads',
        String(threads),
        '--steps',
        arg('torch-steps') ?? String(STEPS),
        '--warmup',
        arg('warmup') ?? String(WARMUP),
      ],
      { encoding: 'utf8', maxBuffer: 16 << 20 },
    );
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) return `PyTorch run failed: ${(r.stderr || '').split('\n').slice(-3).join(' | ')}`;
    const result = JSON.parse(line.slice(7)) as Result;
    result.backend = 'pytorch';
    result.workers = threads;
    return result;
  }
  return 'PyTorch not found (python3 with torch; Debian: apt-get install -y python3-torch): column skipped';
}

/** The markdown table (x PyTorch: relative to PyTorch with 2 threads), phase times and kernel profiles. */
async function printTable(results: Result[], torch: Result | string, say: (line: string) => void): Promise<void> {
  const torchIps = typeof torch === 'string' ? undefined : torch.imgPerSec;
  const torchBest = typeof torch === 'string' ? undefined : torch.bestImgPerSec;
  const name = (r: Result) =>
    r.backend === 'pytorch'
      ? `pytorch, ${r.workers} thread${r.workers === 1 ? '' : 's'}`
      : r.workers && r.backend === 'wasm'
        ? `wasm, ${r.workers} worker${r.workers === 1 ? '' : 's'}`
        : r.backend;
  say('\n(x PyTorch: relative to PyTorch with 2 threads)');
  say(
    '| backend | batch | img/s (median step) | x PyTorch | img/s (best step) | x PyTorch (best) | step ms | CPU ms/step | peak RSS MB | detail |',
  );
  say('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    if (r.error) {
      say(`| ${name(r)} | - | failed | - | - | - | - | - | - | ${r.error} |`);
      continue;
    }
    const ratio = torchIps ? (r.imgPerSec / torchIps).toFixed(2) : '-';
    const best = r.bestImgPerSec ?? r.imgPerSec;
    const ratioBest = torchBest ? (best / torchBest).toFixed(2) : '-';
    say(
      `| ${name(r)} | ${r.batch} | ${r.imgPerSec.toFixed(2)} | ${ratio} | ${best.toFixed(2)} | ${ratioBest} | ${median(r.stepMs)} | ${r.cpuMsPerStep ?? '-'} | ${r.peakRssMb} | ${r.detail} |`,
    );
  }
  if (typeof torch === 'string') say(`\n${torch}`);
  for (const r of results)
    if (r.phases)
      say(
        `  ${name(r)}, ms per step: ${Object.entries(r.phases)
          .map(([k, v]) => `${k} ${v}`)
          .join(
            ', ',
          )} (forward: until every worker's outputs are in; loss: main thread, workers wait; backward, adam: slowest worker)`,
      );
  for (const line of (await import('./train-webgpu.js')).webgpuNotes(results)) say(line);
  for (const r of results) {
    if (!r.profile) continue;
    say(`\nTop kernels by CPU time in one ${r.backend} step (ms, calls):`);
    for (const [k, ms, n] of r.profile) say(`  ${k.padEnd(40)} ${String(ms).padStart(6)} ${String(n).padStart(6)}`);
  }
}

/**
 * `n` rounds of wasm with 2 workers, then PyTorch with 2 threads: each round's ratio and their median. Within a
 * round the two run back to back, so a drift of the host's speed over minutes shows as spread between rounds.
 */
function pairedRounds(
  n: number,
  say: (line: string) => void,
): { paired_rounds?: Array<{ wasm_2_workers: number; pytorch_2_threads: number; x: number }>; median_x?: number } {
  if (!n) return {};
  const out: Array<{ wasm_2_workers: number; pytorch_2_threads: number; x: number }> = [];
  say(`\nPaired rounds (wasm 2 workers, then PyTorch 2 threads), img/s of the median step:`);
  for (let i = 1; i <= n; i++) {
    const w = runChild('wasm', 2);
    const t = runTorch(2);
    if (w.error || typeof t === 'string') {
      say(`  round ${i}: ${w.error ?? (typeof t === 'string' ? t : 'failed')}`);
      return {};
    }
    const x = w.imgPerSec / t.imgPerSec;
    out.push({
      wasm_2_workers: Number(w.imgPerSec.toFixed(2)),
      pytorch_2_threads: Number(t.imgPerSec.toFixed(2)),
      x: Number(x.toFixed(3)),
    });
    say(`  round ${i}: wasm ${w.imgPerSec.toFixed(2)}, PyTorch ${t.imgPerSec.toFixed(2)} -> ${x.toFixed(2)}x`);
  }
  const mid = median(out.map((r) => r.x));
  say(
    `  median over ${n} rounds: ${mid.toFixed(2)}x PyTorch with 2 threads (min ${Math.min(...out.map((r) => r.x)).toFixed(2)}, max ${Math.max(...out.map((r) => r.x)).toFixed(2)})`,
  );
  return { paired_rounds: out, median_x: Number(mid.toFixed(3)) };
}

async function main(): Promise<void> {
  const childBackend = arg('child');
  if (childBackend === 'wasm' && arg('workers')) {
    const r = await shardedChild({
      workers: Number(arg('workers')),
      shards: Number(arg('shards') ?? 2),
      batch: Number(arg('batch') ?? 32),
      steps: Number(arg('steps') ?? STEPS),
      warmup: Number(arg('warmup') ?? WARMUP),
      size: INPUT,
      idsPerBatch: IDS_PER_BATCH,
    });
    console.log(`RESULT ${JSON.stringify(r)}`);
    return;
  }
  if (childBackend) return child(childBackend as BackendName);
  const json = process.argv.includes('--json');
  // With --json only the JSON object goes to stdout.
  const say = (line: string) => (json ? process.stderr.write(line + '\n') : console.log(line));

  const { probeBackends } = await import('../src/ml/backend/select.js');
  const wanted = (arg('backends') ?? 'tensorflow,webgpu,wasm,cpu').split(',');
  const probes = await probeBackends();
  say(
    `Training throughput: EfficientNet-B0 + Dense(512), ${INPUT} px, forward + CE + batch-hard triplet + center + backward + Adam`,
  );
  const load = (await import('node:os')).loadavg()[0];
  const cores = (await import('node:os')).availableParallelism();
  say(
    `  load average ${load.toFixed(2)} on ${cores} cores${load > cores / 2 ? ' (busy machine: figures are lower and noisy, PyTorch with 2 threads most of all)' : ''}`,
  );
  const results: Result[] = [];
  for (const p of probes) {
    if (!wanted.includes(p.name)) continue;
    if (!p.available) {
      say(`  ${p.name}: not available (${p.howToGet ?? p.detail})`);
      continue;
    }
    if (p.name === 'wasm') {
      for (const w of (arg('workers') ?? '1,2').split(',').map(Number)) {
        say(`  wasm, ${w} worker${w === 1 ? '' : 's'}: running...`);
        results.push(runChild('wasm', w));
      }
      continue;
    }
    say(`  ${p.name}: running...`);
    results.push(runChild(p.name));
  }
  // The reference is PyTorch with 2 threads (the machine's cores); 1 thread is the per-core comparison with
  // single-threaded wasm and is far less disturbed by other processes.
  const torch = process.argv.includes('--no-torch') ? 'PyTorch skipped (--no-torch)' : runTorch(2);
  const torchIps = typeof torch === 'string' ? undefined : torch.imgPerSec;
  if (typeof torch !== 'string') {
    results.push(torch);
    const one = runTorch(1);
    if (typeof one !== 'string') results.push(one);
  }

  await printTable(results, torch, say);
  const rounds = pairedRounds(Number(arg('rounds') ?? 0), say);
  if (json) {
    const rows = results.map((r) => ({
      backend: r.backend,
      workers: r.workers ?? 1,
      batch: r.batch,
      img_per_s: r.error ? null : Number(r.imgPerSec.toFixed(2)),
      x_pytorch_2t: torchIps && !r.error ? Number((r.imgPerSec / torchIps).toFixed(3)) : null,
      best_img_per_s: r.error ? null : Number((r.bestImgPerSec ?? r.imgPerSec).toFixed(2)),
      peak_rss_mb: r.peakRssMb,
      ...(r.phases ? { phases_ms: r.phases } : {}),
      ...(r.error ? { error: r.error } : {}),
    }));
    console.log(JSON.stringify({ input: INPUT, load_average: Number(load.toFixed(2)), cores, rows, ...rounds }));
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
