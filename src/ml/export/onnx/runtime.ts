// Embedding through onnxruntime-node (an optional dependency): loaded by a dynamic import, so facepipe builds,
// installs and runs without it. Only the few members used are typed here.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from './info.js';

interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface OrtModule {
  InferenceSession: { create(model: string | Uint8Array, options?: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
  env: { versions: { node?: string; common?: string } };
}

const PKG = 'onnxruntime-node';
export const ORT_HOW_TO_GET =
  'npm install onnxruntime-node (an optional dependency of facepipe; the project .npmrc skips its CUDA download)';

let loaded: Promise<OrtModule | { error: string }> | undefined;

/** onnxruntime-node, or why it cannot be loaded (not installed, or a broken native binding). */
export function loadOnnxRuntime(): Promise<OrtModule | { error: string }> {
  loaded ??= (async () => {
    try {
      return (await import(PKG)) as OrtModule;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return { error: `${PKG} is not installed` };
      return { error: `${PKG} cannot be loaded: ${(err as Error).message.split('\n')[0]}` };
    }
  })();
  return loaded;
}

export async function onnxRuntimeStatus(): Promise<{ available: boolean; detail: string }> {
  const ort = await loadOnnxRuntime();
  if ('error' in ort) return { available: false, detail: ort.error };
  return { available: true, detail: `${PKG} ${ort.env.versions.node ?? '?'}` };
}

/**
 * Execution providers to ask for: CUDA first when its provider library was installed into onnxruntime-node
 * (see the README: it is not on the npm registry), the CPU always.
 */
export function executionProviders(): string[] {
  try {
    const binding = dirname(createRequire(import.meta.url).resolve(`${PKG}/package.json`));
    const dir = join(binding, 'bin', 'napi-v6', process.platform, process.arch);
    if (existsSync(join(dir, 'libonnxruntime_providers_cuda.so'))) return ['cuda', 'cpu'];
  } catch {
    /* not installed: loadOnnxRuntime says so */
  }
  return ['cpu'];
}

export interface OnnxEmbedderOptions {
  /** Intra-op threads; 0 lets onnxruntime choose (one per physical core). */
  threads?: number;
  /** false: idle pool threads sleep instead of spinning (kinder to a machine shared with other processes). */
  spinning?: boolean;
}

/**
 * What evaluate runs with: onnxruntime's thread count (one per physical core), pool threads sleeping when idle.
 * With other processes on the cores, spinning threads cost 1.3-3x in throughput (bench:infer, 2 shared cores).
 */
export const EVALUATE_ORT_OPTIONS: OnnxEmbedderOptions = { threads: 0, spinning: false };

/** A model.onnx session: float32 NHWC batches in, embedding rows out. */
export class OnnxEmbedder {
  private constructor(
    private readonly ort: OrtModule,
    private readonly session: OrtSession,
    readonly inputSize: number,
    /** Execution providers the session was created with. */
    readonly providers: string[],
  ) {}

  static async load(file: string, inputSize: number, opts: OnnxEmbedderOptions = {}): Promise<OnnxEmbedder> {
    const ort = await loadOnnxRuntime();
    if ('error' in ort) throw new Error(`${ort.error}; to get it: ${ORT_HOW_TO_GET}`);
    const base = {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: opts.threads ?? 0,
      executionMode: 'sequential',
      ...(opts.spinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
    };
    let providers = executionProviders();
    let session: OrtSession;
    try {
      session = await ort.InferenceSession.create(file, { ...base, executionProviders: providers });
    } catch (err) {
      if (providers.length === 1)
        throw new Error(`${file}: onnxruntime cannot load it: ${(err as Error).message}`, { cause: err });
      // A CUDA provider without a usable GPU or driver: the CPU still works.
      providers = ['cpu'];
      session = await ort.InferenceSession.create(file, { ...base, executionProviders: providers });
    }
    return new OnnxEmbedder(ort, session, inputSize, providers);
  }

  /** `data` holds n images [n, S, S, 3] (RGB / 255); returns [n, dim] row-major. */
  async embedArray(data: Float32Array, n: number): Promise<{ dim: number; values: Float32Array }> {
    const s = this.inputSize;
    if (data.length !== n * s * s * 3) throw new Error(`ONNX embed: ${data.length} values are not ${n} x ${s}x${s}x3`);
    const out = await this.session.run({ [ONNX_INPUT_NAME]: new this.ort.Tensor('float32', data, [n, s, s, 3]) });
    const e = out[ONNX_OUTPUT_NAME];
    return { dim: e.dims[1], values: e.data as Float32Array };
  }

  dispose(): Promise<void> {
    return this.session.release();
  }
}
