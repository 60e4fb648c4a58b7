// Picks and initialises the TensorFlow.js backend. TensorFlow.js is only ever loaded from here, through
// dynamic imports, so CLI commands that never run an ML stage do not pay for it.
import { createRequire } from 'node:module';
import type { BackendInfo, BackendName, BackendPreference } from '../types.js';
import { formatAdapter, formatLimits, initWebGpu, webgpuVersions, probeWebGpu, WEBGPU_HOW_TO_GET } from './webgpu.js';

export interface BackendProbe {
  name: BackendName;
  available: boolean;
  /** False when it loads but `auto` passes it over (webgpu on a software adapter). */
  autoEligible?: boolean;
  version?: string;
  detail: string;
  howToGet?: string;
  /** Further lines for `doctor` (the WebGPU adapter's limits). */
  more?: string[];
}

const require = createRequire(import.meta.url);

const NATIVE_HOW_TO_GET =
  'npm install @tensorflow/tfjs-node (or @tensorflow/tfjs-node-gpu for CUDA 11.2 / cuDNN 8.1). Its install ' +
  'script downloads libtensorflow 2.9.1 from an outside download host at install time, so it needs internet access there; ' +
  'as an optional dependency a failed download is silent (check with `npm install --foreground-scripts`).';
const WASM_HOW_TO_GET = 'npm install @tensorflow/tfjs-backend-wasm (a regular dependency of facepipe: reinstall)';
const CPU_HOW_TO_GET = 'npm install @tensorflow/tfjs-backend-cpu (a regular dependency of facepipe: reinstall)';

function isModuleNotFound(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

function packageVersion(pkg: string): string | undefined {
  try {
    return (require(`${pkg}/package.json`) as { version: string }).version;
  } catch {
    return undefined;
  }
}

/** Tries the native packages, GPU first. Importing one registers the 'tensorflow' backend. */
async function loadNative(): Promise<{ pkg: string; version?: string; error?: string }> {
  const errors: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      return { pkg, version: packageVersion(pkg) };
    } catch (err) {
      if (!isModuleNotFound(err)) errors.push(`${pkg}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return { pkg: '', error: errors.length ? errors.join('; ') : 'not installed' };
}

let current: { name: BackendName; info: BackendInfo } | undefined;
let pending: Promise<BackendInfo> | undefined;

/**
 * Initialises a backend (idempotent). 'auto' picks tensorflow (GPU package, then CPU package) > webgpu (hardware
 * adapters only) > wasm > cpu.
 * Choosing wasm also registers facepipe's training kernels. A named backend that is not available throws an
 * error saying how to get it.
 */
export async function initBackend(pref: BackendPreference = 'auto'): Promise<BackendInfo> {
  // Serialise concurrent calls: two inits racing on tf.setBackend would leave an undefined state.
  const run = async (): Promise<BackendInfo> => {
    const tf = await import('@tensorflow/tfjs-core');
    // Someone may have switched backends behind our back (tests do): only reuse what is still active.
    if (current && tf.getBackend() === current.name && (pref === 'auto' || pref === current.name)) return current.info;
    const order: BackendName[] = pref === 'auto' ? ['tensorflow', 'webgpu', 'wasm', 'cpu'] : [pref];
    const failures: string[] = [];
    for (const name of order) {
      const info = await tryInit(tf, name, failures, pref === 'auto');
      if (info) {
        current = { name, info };
        return info;
      }
    }
    if (pref !== 'auto') {
      const how = {
        tensorflow: NATIVE_HOW_TO_GET,
        webgpu: WEBGPU_HOW_TO_GET,
        wasm: WASM_HOW_TO_GET,
        cpu: CPU_HOW_TO_GET,
      }[pref];
      throw new Error(`TensorFlow.js backend '${pref}' is not available (${failures.join('; ')}). To get it: ${how}`);
    }
    throw new Error(`No TensorFlow.js backend could be initialised: ${failures.join('; ')}`);
  };
  const next = (pending ?? Promise.resolve()).catch(() => undefined).then(run);
  pending = next;
  return next;
}

type Tf = typeof import('@tensorflow/tfjs-core');

async function tryInit(tf: Tf, name: BackendName, failures: string[], auto: boolean): Promise<BackendInfo | undefined> {
  if (name === 'webgpu') {
    const r = await initWebGpu(tf, auto);
    if (typeof r === 'string') failures.push(`webgpu: ${r}`);
    return typeof r === 'string' ? undefined : r;
  }
  if (name === 'tensorflow') {
    const native = await loadNative();
    if (native.error) {
      failures.push(`tensorflow: ${native.error}`);
      return undefined;
    }
    if (!(await tf.setBackend('tensorflow'))) {
      failures.push(`tensorflow: ${native.pkg} loaded but the backend failed to initialise`);
      return undefined;
    }
    const gpu = native.pkg.endsWith('-gpu');
    return { name, version: `${native.pkg} ${native.version ?? '?'}`, detail: gpu ? 'GPU (CUDA)' : 'CPU (native)' };
  }
  if (name === 'wasm') {
    try {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const { registerWasmTrainingKernels } = await import('../kernels/register.js');
      registerWasmTrainingKernels();
      if (!(await tf.setBackend('wasm'))) {
        // The default locator failed (e.g. bundled): point it at the package's own dist folder and retry.
        const dist = require.resolve('@tensorflow/tfjs-backend-wasm/package.json').replace(/package\.json$/, 'dist/');
        wasm.setWasmPaths(dist);
        if (!(await tf.setBackend('wasm'))) {
          failures.push('wasm: the backend failed to initialise (wasm binary not found or not loadable)');
          return undefined;
        }
      }
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      const threads = wasm.getThreadsCount();
      return {
        name,
        version: `@tensorflow/tfjs-backend-wasm ${wasm.version_wasm}`,
        detail: `SIMD ${simd ? 'on' : 'off'}, ${threads} thread${threads === 1 ? '' : 's'}, facepipe training kernels`,
      };
    } catch (err) {
      failures.push(`wasm: ${(err as Error).message.split('\n')[0]}`);
      return undefined;
    }
  }
  try {
    await import('@tensorflow/tfjs-backend-cpu');
    if (!(await tf.setBackend('cpu'))) {
      failures.push('cpu: the backend failed to initialise');
      return undefined;
    }
    return {
      name: 'cpu',
      version: `@tensorflow/tfjs-backend-cpu ${packageVersion('@tensorflow/tfjs-backend-cpu') ?? '?'}`,
      detail: 'plain JavaScript, slow',
    };
  } catch (err) {
    failures.push(`cpu: ${(err as Error).message.split('\n')[0]}`);
    return undefined;
  }
}

/** The backend initBackend chose, if any. */
export function currentBackend(): BackendInfo | undefined {
  return current?.info;
}

/** What an ML stage reports through ctx.metrics: the backend and, on webgpu, its adapter (run record). */
export function backendMetrics(info: BackendInfo): Record<string, string> {
  return info.adapter ? { backend: info.name, adapter: info.adapter } : { backend: info.name };
}

async function probeWebGpuRow(): Promise<BackendProbe> {
  const r = await probeWebGpu();
  if (!r.adapter) return { name: 'webgpu', available: false, detail: r.error!, howToGet: WEBGPU_HOW_TO_GET };
  const a = r.adapter;
  return {
    name: 'webgpu',
    available: true,
    autoEligible: !a.software,
    version: webgpuVersions(),
    detail: `adapter: ${formatAdapter(a)}${a.software ? ' (auto skips software adapters: slower than wasm)' : ''}`,
    more: [`vendor '${a.vendor}', architecture '${a.architecture}', device '${a.device}'`, formatLimits(a.limits)],
  };
}

/** What `facepipe doctor` shows: every backend, whether it loads, versions, SIMD/threads, the WebGPU adapter, how to get them. */
export async function probeBackends(): Promise<BackendProbe[]> {
  const tf = await import('@tensorflow/tfjs-core');
  const out: BackendProbe[] = [];

  const native = await loadNative();
  out.push(
    native.error
      ? {
          name: 'tensorflow',
          available: false,
          detail: `@tensorflow/tfjs-node(-gpu): ${native.error}`,
          howToGet: NATIVE_HOW_TO_GET,
        }
      : {
          name: 'tensorflow',
          available: true,
          version: `${native.pkg} ${native.version ?? '?'}`,
          detail: native.pkg.endsWith('-gpu') ? 'GPU (CUDA) build of libtensorflow' : 'CPU build of libtensorflow',
        },
  );

  out.push(await probeWebGpuRow());

  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
    out.push({
      name: 'wasm',
      available: true,
      version: `@tensorflow/tfjs-backend-wasm ${wasm.version_wasm}`,
      detail:
        `SIMD ${simd ? 'on' : 'off'}, multithreading ${threads ? 'on' : 'off (not supported in Node)'}; ` +
        'facepipe registers its own gradient kernels so it can train',
    });
  } catch (err) {
    out.push({
      name: 'wasm',
      available: false,
      detail: (err as Error).message.split('\n')[0],
      howToGet: WASM_HOW_TO_GET,
    });
  }

  try {
    await import('@tensorflow/tfjs-backend-cpu');
    out.push({
      name: 'cpu',
      available: true,
      version: `@tensorflow/tfjs-backend-cpu ${packageVersion('@tensorflow/tfjs-backend-cpu') ?? '?'}`,
      detail: 'plain JavaScript, slow (reference backend)',
    });
  } catch (err) {
    out.push({
      name: 'cpu',
      available: false,
      detail: (err as Error).message.split('\n')[0],
      howToGet: CPU_HOW_TO_GET,
    });
  }
  return out;
}
