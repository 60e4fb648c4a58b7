// bench:train's webgpu row (and bench:gpu's): facepipe's own training step (trainStep + its Adam, every read
// asynchronous) with the kernel dispatches of one step counted, fused kernels on and, for comparison, off.
import { fitMicroBatch } from '../src/ml/backend/binding-limit.js';
import { initBackend } from '../src/ml/backend/select.js';
import { countDispatches } from '../src/ml/backend/webgpu.js';
import { setWebGpuFusion } from '../src/ml/kernels/webgpu/register.js';
import { createTriarchyNet } from '../src/ml/model/index.js';
import { runTrainSteps, type StepSetup } from './train-step.js';

export interface WebGpuFigures {
  dispatches?: number;
  stockDispatches?: number;
  microBatch?: number;
  software?: boolean;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The child process of the webgpu row: prints one `RESULT {json}` line in bench:train's Result shape. */
export async function webgpuChild(arg: (name: string) => string | undefined, argv: string[]): Promise<void> {
  const info = await initBackend('webgpu');
  const size = Number(arg('size') ?? 64);
  const batch = Number(arg('batch') ?? 32);
  const steps = Number(arg('steps') ?? 4);
  const width = Number(arg('width') ?? 1);
  const depth = Number(arg('depth') ?? 1);
  const probe = createTriarchyNet({
    backbone: { width, depth, inputSize: size, bnMomentum: 0.9, dropConnect: 0 },
    embeddingDim: 512,
    numClasses: 2,
    seed: 0,
  });
  const microBatch = fitMicroBatch(undefined, batch, probe);
  probe.dispose();
  const setup: StepSetup = { size, batch, width, depth, microBatch, dropConnect: 0.2 };
  const cpu0 = process.cpuUsage();
  const fused = await runTrainSteps(setup, steps, { count: countDispatches });
  const cpu = process.cpuUsage(cpu0);
  let stockDispatches: number | undefined;
  if (!argv.includes('--no-stock')) {
    setWebGpuFusion(false);
    stockDispatches = (await runTrainSteps(setup, 1, { count: countDispatches })).dispatches;
    setWebGpuFusion(true);
  }
  const med = median(fused.stepMs);
  const result = {
    backend: 'webgpu',
    detail: `${info.version}, ${info.adapter ?? '?'}`,
    batch,
    steps,
    stepMs: fused.stepMs.map((t) => Math.round(t)),
    imgPerSec: batch / (med / 1000),
    bestImgPerSec: batch / (Math.min(...fused.stepMs) / 1000),
    cpuMsPerStep: Math.round((cpu.user + cpu.system) / 1000 / (steps + 1)),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    dispatches: fused.dispatches,
    stockDispatches,
    microBatch,
    software: /software/.test(info.adapter ?? ''),
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

/** Lines bench:train prints under its table for the webgpu row. */
export function webgpuNotes(results: Array<{ backend: string; error?: string } & WebGpuFigures>): string[] {
  const r = results.find((x) => x.backend === 'webgpu' && !x.error);
  if (!r) return [];
  const lines = [
    `\nwebgpu: ${r.dispatches ?? '?'} kernel dispatches per training step with facepipe's fused kernels` +
      (r.stockDispatches
        ? `, ${r.stockDispatches} with the stock kernels (${((100 * r.dispatches!) / r.stockDispatches).toFixed(0)}%)`
        : '') +
      (r.microBatch ? `; micro-batches of ${r.microBatch} (adapter binding limit)` : ''),
  ];
  if (r.software)
    lines.push('webgpu ran on a software adapter (CPU): its speed says nothing about a GPU (npm run bench:gpu on one)');
  return lines;
}
