/// <reference types="@webgpu/types" />
// The WebGPU backend through Dawn (the `webgpu` npm package): adapter discovery and description, backend
// registration with the adapter's full limits, device errors turned into exceptions, a dispatch counter.
// Traps handled here (see the reference notes): tfjs-backend-webgpu registers itself only if navigator.gpu
// exists at import, needs the WebGPU constants (GPUBufferUsage, ...) as globals, and tf.setBackend returns false
// (it does not throw) when initialisation fails.
import { createRequire } from 'node:module';
import type { BackendInfo } from '../types.js';

const require = createRequire(import.meta.url);

type Tf = typeof import('@tensorflow/tfjs-core');

export interface AdapterLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxStorageBuffersPerShaderStage: number;
  maxComputeWorkgroupStorageSize: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupsPerDimension: number;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** The adapter says it is a fallback adapter (WebGPU's term for a software implementation). */
  fallback: boolean;
  /** Fallback, or a known CPU implementation (llvmpipe/lavapipe, SwiftShader, WARP) by name. */
  software: boolean;
  limits: AdapterLimits;
}

/** Limits facepipe requests from the device: the adapter's own, not WebGPU's small defaults. */
const LIMIT_NAMES: Array<keyof AdapterLimits> = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
];

const SOFTWARE_NAMES = /llvmpipe|lavapipe|softpipe|swiftshader|warp|software/i;

export const WEBGPU_HOW_TO_GET =
  'a GPU with a Vulkan driver (NVIDIA: the driver plus libvulkan1; in containers the "graphics" driver capability). ' +
  'Without a GPU, scripts/software-adapter.sh fetches a software adapter (Mesa lavapipe) and writes ' +
  '.software-adapter/env.sh to source (slower than wasm: for tests only)';

interface Dawn {
  create(options: string[]): GPU;
  globals: Record<string, unknown>;
}

let dawn: Promise<Dawn> | undefined;
let gpu: GPU | undefined;
let adapterSummary: AdapterSummary | undefined;
let deviceErrors: string[] = [];
let dispatches = 0;
let counting = false;

function loadDawn(): Promise<Dawn> {
  dawn ??= (async () => {
    let mod: Dawn;
    try {
      mod = (await import('webgpu')) as unknown as Dawn;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND')
        throw new Error('the webgpu package is not installed (a regular dependency of facepipe: reinstall)', {
          cause: err,
        });
      throw new Error(`Dawn (webgpu's dawn.node) does not load here: ${(err as Error).message.split('\n')[0]}`, {
        cause: err,
      });
    }
    // tfjs-backend-webgpu uses GPUBufferUsage, GPUMapMode, GPUBuffer (instanceof), ... as browser globals.
    for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) Object.assign(globalThis, { [k]: v });
    return mod;
  })();
  return dawn;
}

function getGpu(mod: Dawn): GPU {
  if (!gpu) {
    gpu = mod.create([]);
    // Node 21+ has a navigator without gpu; Node 20 has none.
    const g = globalThis as { navigator?: { gpu?: GPU } };
    if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
    if (!g.navigator!.gpu) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  }
  return gpu;
}

export function describeAdapter(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const limits = Object.fromEntries(LIMIT_NAMES.map((k) => [k, Number(adapter.limits[k])])) as unknown as AdapterLimits;
  const fallback = info.isFallbackAdapter === true;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    fallback,
    software: fallback || SOFTWARE_NAMES.test(text),
    limits,
  };
}

/** "mesa software, llvmpipe: Mesa 25.0.7 (LLVM 15.0.6), software (fallback adapter)" */
export function formatAdapter(a: AdapterSummary): string {
  const name = [a.vendor, a.architecture].filter(Boolean).join(' ') || 'unknown vendor';
  const what = a.description || a.device || 'unnamed device';
  const kind = a.software ? `software${a.fallback ? ' (fallback adapter)' : ''}` : 'hardware';
  return `${name}, ${what}, ${kind}`;
}

export function formatLimits(l: AdapterLimits): string {
  const mib = (b: number) => `${Math.round(b / 2 ** 20)} MiB`;
  return (
    `maxStorageBufferBindingSize ${mib(l.maxStorageBufferBindingSize)}, maxBufferSize ${mib(l.maxBufferSize)}, ` +
    `maxStorageBuffersPerShaderStage ${l.maxStorageBuffersPerShaderStage}, ` +
    `maxComputeWorkgroupStorageSize ${l.maxComputeWorkgroupStorageSize} B, ` +
    `maxComputeInvocationsPerWorkgroup ${l.maxComputeInvocationsPerWorkgroup}`
  );
}

async function requestAdapter(): Promise<GPUAdapter> {
  const g = getGpu(await loadDawn());
  const adapter = await g.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter)
    throw new Error(
      'Dawn found no WebGPU adapter (no Vulkan driver it accepts; Debian 12 lavapipe, Mesa 22, is too old)',
    );
  return adapter;
}

/** What `doctor` shows; never throws. */
export async function probeWebGpu(): Promise<{ adapter?: AdapterSummary; error?: string }> {
  try {
    return { adapter: describeAdapter(await requestAdapter()) };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

export function webgpuVersions(): string {
  const v = (p: string) => {
    try {
      return (require(`${p}/package.json`) as { version: string }).version;
    } catch {
      return '?';
    }
  };
  return `@tensorflow/tfjs-backend-webgpu ${v('@tensorflow/tfjs-backend-webgpu')}, webgpu ${v('webgpu')} (Dawn)`;
}

/**
 * Registers and sets the 'webgpu' backend on the best adapter. With hardwareOnly, a software adapter is refused
 * (auto: lavapipe & co. are slower than wasm). Returns a failure text instead of throwing.
 */
export async function initWebGpu(tf: Tf, hardwareOnly: boolean): Promise<BackendInfo | string> {
  if (!ready) {
    let adapter: GPUAdapter;
    try {
      adapter = await requestAdapter();
    } catch (err) {
      return (err as Error).message;
    }
    const summary = describeAdapter(adapter);
    if (hardwareOnly && summary.software) return softwareRefusal(summary);
    // FACEPIPE_WEBGPU_MAX_BINDING_MIB lowers the binding limit (rehearse a smaller GPU; the tests do).
    const cap = Number(process.env.FACEPIPE_WEBGPU_MAX_BINDING_MIB) * 2 ** 20;
    if (cap > 0 && cap < summary.limits.maxStorageBufferBindingSize) summary.limits.maxStorageBufferBindingSize = cap;
    ready = register(tf, adapter, summary);
  }
  let registered: { info: BackendInfo; summary: AdapterSummary };
  try {
    registered = await ready;
  } catch (err) {
    ready = undefined;
    return (err as Error).message.split('\n')[0];
  }
  const { info, summary } = registered;
  if (hardwareOnly && summary.software) return softwareRefusal(summary);
  // Registered once per process: switching back to webgpu later reuses the device.
  if (!(await tf.setBackend('webgpu'))) {
    ready = undefined;
    return 'the backend failed to initialise (see the error printed above)';
  }
  adapterSummary = summary;
  return info;
}

let ready: Promise<{ info: BackendInfo; summary: AdapterSummary }> | undefined;

const softwareRefusal = (a: AdapterSummary) =>
  `only a software adapter (${formatAdapter(a)}), slower than wasm: auto skips it, --backend webgpu forces it`;

async function register(
  tf: Tf,
  adapter: GPUAdapter,
  summary: AdapterSummary,
): Promise<{ info: BackendInfo; summary: AdapterSummary }> {
  // Importing the package registers its kernels; its own backend factory only when navigator.gpu was set first.
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', async () => {
    const requiredLimits = Object.fromEntries(LIMIT_NAMES.map((k) => [k, adapter.limits[k]]));
    const requiredFeatures = (['timestamp-query'] as GPUFeatureName[]).filter((f) => adapter.features.has(f));
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
    watchDevice(device);
    const backend = new WebGPUBackend(device, adapter.info);
    guardReads(backend);
    return backend;
  });
  const { registerWebGpuKernels } = await import('../kernels/webgpu/register.js');
  registerWebGpuKernels();
  const info: BackendInfo = {
    name: 'webgpu',
    version: webgpuVersions(),
    detail: `${formatAdapter(summary)}, facepipe fused kernels`,
    adapter: formatAdapter(summary),
  };
  return { info, summary };
}

// A failed validation (e.g. a binding over maxStorageBufferBindingSize) only logs in WebGPU and leaves zeros
// behind; collect such errors and fail the next read instead of training on garbage.
function watchDevice(device: GPUDevice): void {
  deviceErrors = [];
  device.addEventListener('uncapturederror', (ev) => {
    const msg = ev.error.message.split('\n')[0];
    if (deviceErrors.length < 5) deviceErrors.push(msg);
  });
  void device.lost.then((info) => {
    if (info.reason !== 'destroyed') deviceErrors.push(`device lost: ${info.message}`);
  });
}

function guardReads(backend: { read(dataId: object): Promise<unknown> }): void {
  const read = backend.read.bind(backend);
  backend.read = async (dataId: object) => {
    const values = await read(dataId);
    if (deviceErrors.length) {
      const errs = deviceErrors;
      deviceErrors = [];
      throw new Error(`WebGPU device error: ${errs.join('; ')}`);
    }
    return values;
  };
}

/** The adapter the webgpu backend runs on (after a successful initWebGpu). */
export function webgpuAdapter(): AdapterSummary | undefined {
  return adapterSummary;
}

/**
 * Counts compute dispatches from now on (all devices of this process). Returns a reader. The count is the
 * number of GPU kernel launches, each of which costs the host tens of microseconds in Dawn.
 */
export async function countDispatches(): Promise<() => number> {
  const mod = await loadDawn();
  if (!counting) {
    const proto = (mod.globals.GPUComputePassEncoder as { prototype: GPUComputePassEncoder }).prototype;
    const orig = Object.getOwnPropertyDescriptor(proto, 'dispatchWorkgroups')!.value as (
      this: GPUComputePassEncoder,
      ...args: Parameters<GPUComputePassEncoder['dispatchWorkgroups']>
    ) => undefined;
    proto.dispatchWorkgroups = function (this: GPUComputePassEncoder, ...args) {
      dispatches++;
      return orig.apply(this, args);
    };
    counting = true;
  }
  const start = dispatches;
  return () => dispatches - start;
}
