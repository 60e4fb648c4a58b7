// Inference throughput of the embedding net (EfficientNet + Dense(512), eval mode) on each runtime evaluate can
// use, next to PyTorch, in one run: TF.js wasm, onnxruntime-node (facepipe's model.onnx), PyTorch eager (when
// python3 with torch is found, bench/torch_infer.py). Each runtime runs in its own child process.
// Two nets: B0 at 64 px (width 1, depth 1) and the default config's (width 0.5, depth 0.5, 56 px); batch 64.
// A last row times evaluate's own embedding path (embedFiles through onnxruntime on the bundled faces,
// decoded images cached): batching, float conversion and flip averaging included.
//
//   npm run bench:infer                 all of it, a table
//   npm run bench:infer -- --json       the same figures as JSON
//   node dist/bench/infer.bench.js --nets b0 --batches 4 --no-torch
import { spawnSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/core/package-root.js';
import type { BackboneConfig } from '../src/ml/types.js';

interface Net {
  name: string;
  backbone: BackboneConfig;
  dim: number;
}
const NETS: Net[] = [
  { name: 'b0-64', backbone: { width: 1, depth: 1, inputSize: 64, bnMomentum: 0.9, dropConnect: 0 }, dim: 512 },
  {
    name: 'default-56',
    backbone: { width: 0.5, depth: 0.5, inputSize: 56, bnMomentum: 0.9, dropConnect: 0 },
    dim: 512,
  },
];

interface Result {
  net: string;
  runtime: string;
  detail: string;
  batch: number;
  imgPerSec: number;
  bestImgPerSec: number;
  batchMs: number[];
  peakRssMb: number;
  error?: string;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const BATCH = Number(arg('batch') ?? 64);
const BATCHES = Number(arg('batches') ?? 8);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeBatches(run: () => Promise<unknown>): Promise<number[]> {
  await run(); // warm-up: XNNPACK / MLAS packing, allocations
  const times: number[] = [];
  for (let i = 0; i < BATCHES; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return times;
}

function result(net: Net, runtime: string, detail: string, batch: number, times: number[]): Result {
  return {
    net: net.name,
    runtime,
    detail,
    batch,
    imgPerSec: batch / (median(times) / 1000),
    bestImgPerSec: batch / (Math.min(...times) / 1000),
    batchMs: times.map((t) => Math.round(t * 10) / 10),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

/** One runtime on one net, in this (child) process. */
async function child(runtime: string, net: Net): Promise<Result> {
  const tf = await import('@tensorflow/tfjs-core');
  const { initBackend } = await import('../src/ml/backend/select.js');
  const { createEmbeddingNet } = await import('../src/ml/model/index.js');
  const info = await initBackend('wasm');
  const model = createEmbeddingNet({ backbone: net.backbone, embeddingDim: net.dim, seed: 0 });
  const s = net.backbone.inputSize;
  const x = tf.randomUniform<import('@tensorflow/tfjs-core').Rank.R4>([BATCH, s, s, 3], 0, 1, 'float32', 1);
  if (runtime === 'tfjs-wasm') {
    const times = await timeBatches(async () => {
      const e = model.embed(x, BATCH);
      await e.data();
      e.dispose();
    });
    return result(net, runtime, `${info.version}, ${info.detail}`, BATCH, times);
  }
  const { writeOnnxModel } = await import('../src/ml/export/onnx/index.js');
  const { EVALUATE_ORT_OPTIONS, OnnxEmbedder, onnxRuntimeStatus } = await import('../src/ml/export/onnx/runtime.js');
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(join(tmpdir(), 'bench-infer-'));
  try {
    const file = join(dir, 'model.onnx');
    await writeOnnxModel(model, file);
    // 'onnxruntime' and the evaluate path use evaluate's options; the other two rows vary one thing each.
    const threads = runtime === 'onnxruntime 1T' ? 1 : 0;
    const spinning = runtime === 'onnxruntime spinning' ? undefined : EVALUATE_ORT_OPTIONS.spinning;
    const ort = await OnnxEmbedder.load(file, s, { threads, spinning });
    const status = await onnxRuntimeStatus();
    const how = threads ? '1 thread' : 'default threads';
    const detail = `${status.detail}, ${ort.providers.join('+')}, ${how}, ${spinning === false ? 'no spinning' : 'spinning'}`;
    if (runtime === 'evaluate path (onnx)') return await evaluatePath(net, ort, detail);
    const data = (await x.data()) as Float32Array;
    const times = await timeBatches(() => ort.embedArray(data, BATCH));
    await ort.dispose();
    return result(net, runtime, detail, BATCH, times);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** embedFiles over the bundled faces (624 images, as evaluate calls it; decoded images cached after warm-up). */
async function evaluatePath(
  net: Net,
  ort: import('../src/ml/export/onnx/runtime.js').OnnxEmbedder,
  detail: string,
): Promise<Result> {
  const { readdirSync } = await import('node:fs');
  const { embedFiles } = await import('../src/ml/eval/embed.js');
  const { ImageCache } = await import('../src/ml/data/cache.js');
  const root = join(packageRoot(), 'data', 'cmu-faces');
  const files = readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.pgm'))
    .sort();
  const opts = { inputSize: net.backbone.inputSize, batchSize: BATCH, flipAverage: true, cache: new ImageCache() };
  const times = await timeBatches(() => embedFiles(ort, root, files, opts));
  await ort.dispose();
  // Flip averaging embeds every image twice: img/s counts images, as evaluate sees them.
  return result(net, 'evaluate path (onnx)', `${detail}; ${files.length} images, flip_average`, files.length, times);
}

function runChild(runtime: string, net: Net): Result {
  const extra = ['batch', 'batches'].flatMap((k) => (arg(k) ? [`--${k}`, arg(k)!] : []));
  const r = spawnSync(
    process.execPath,
    [...process.execArgv, process.argv[1], '--child', runtime, '--net', net.name, ...extra],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (line) return JSON.parse(line.slice(7)) as Result;
  const why = (r.stderr || r.stdout)
    .split('\n')
    .filter((l) => l.trim())
    .slice(-3)
    .join(' | ');
  return failed(net, runtime, why || `exit ${r.status}`);
}

function failed(net: Net, runtime: string, error: string): Result {
  return {
    net: net.name,
    runtime,
    detail: '',
    batch: 0,
    imgPerSec: 0,
    bestImgPerSec: 0,
    batchMs: [],
    peakRssMb: 0,
    error,
  };
}

/** PyTorch eager with `threads` threads; a string when there is no torch. */
function runTorch(net: Net, threads: number): Result | string {
  const script = join(packageRoot(), 'bench', 'torch_infer.py');
  for (const python of ['python3', '/usr/bin/python3']) {
    if (spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0) continue;
    const b = net.backbone;
    const r = spawnSync(
      python,
      [script, '--batch', String(BATCH), '--batches', String(BATCHES), '--size', String(b.inputSize)]
        .concat(['--width', String(b.width), '--depth', String(b.depth), '--dim', String(net.dim)])
        .concat(['--threads', String(threads)]),
      { encoding: 'utf8', maxBuffer: 16 << 20 },
    );
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    if (!line) return failed(net, `pytorch ${threads}T`, (r.stderr || '').split('\n').slice(-3).join(' | '));
    return { ...(JSON.parse(line.slice(7)) as Result), net: net.name };
  }
  return 'PyTorch not found (python3 with torch; Debian: apt-get install -y python3-torch): its rows skipped';
}

async function main(): Promise<void> {
  const childRuntime = arg('child');
  if (childRuntime) {
    const net = NETS.find((n) => n.name === arg('net'))!;
    console.log(`RESULT ${JSON.stringify(await child(childRuntime, net))}`);
    return;
  }
  const json = process.argv.includes('--json');
  const wanted = (arg('nets') ?? 'b0,default').split(',');
  const nets = NETS.filter((n) => wanted.some((w) => n.name.startsWith(w)));
  const { onnxRuntimeStatus } = await import('../src/ml/export/onnx/runtime.js');
  const ort = await onnxRuntimeStatus();
  const load = loadavg()[0];
  const cores = availableParallelism();
  const notes: string[] = [];
  if (!ort.available) notes.push(`onnxruntime rows skipped: ${ort.detail}`);
  const results: Result[] = [];
  for (const net of nets) {
    const onnxRows = ['onnxruntime', 'onnxruntime spinning', 'onnxruntime 1T'];
    const runtimes = ['tfjs-wasm', ...(ort.available ? onnxRows : [])];
    for (const rt of runtimes) {
      if (!json) process.stdout.write(`  ${net.name} ${rt}: running...\n`);
      results.push(runChild(rt, net));
    }
    if (!process.argv.includes('--no-torch')) {
      for (const threads of [2, 1]) {
        const t = runTorch(net, threads);
        if (typeof t === 'string') {
          if (!notes.includes(t)) notes.push(t);
          break;
        }
        results.push(t);
      }
    }
    if (ort.available && net.name === 'default-56') results.push(runChild('evaluate path (onnx)', net));
  }
  const machine = { loadAverage: Number(load.toFixed(2)), cores, batch: BATCH, batches: BATCHES };
  if (json) {
    console.log(JSON.stringify({ machine, results, notes }, null, 2));
    return;
  }
  console.log(
    `\nInference throughput, embedding net (eval mode), batch ${BATCH}, median of ${BATCHES} batches after a warm-up`,
  );
  console.log(
    `  load average ${load.toFixed(2)} on ${cores} cores${load > cores / 2 ? ' (busy machine: figures are low and noisy)' : ''}`,
  );
  // The peer is the net's faster PyTorch row: with other processes on the cores, 2 threads can lose to 1.
  const torchBest = (net: string): number | undefined => {
    const ips = results.filter((t) => t.net === net && t.runtime.startsWith('pytorch') && !t.error);
    return ips.length ? Math.max(...ips.map((t) => t.imgPerSec)) : undefined;
  };
  console.log(
    '| net | runtime | img/s (median) | x PyTorch (faster of 1T, 2T) | img/s (best) | batch ms (median) | peak RSS MB | detail |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    if (r.error) {
      console.log(`| ${r.net} | ${r.runtime} | failed | - | - | - | - | ${r.error} |`);
      continue;
    }
    const peer = torchBest(r.net);
    const ratio = peer ? (r.imgPerSec / peer).toFixed(2) : '-';
    console.log(
      `| ${r.net} | ${r.runtime} | ${r.imgPerSec.toFixed(1)} | ${ratio} | ${r.bestImgPerSec.toFixed(1)} | ${median(r.batchMs)} | ${r.peakRssMb} | ${r.detail} |`,
    );
  }
  for (const n of notes) console.log(`\n${n}`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
