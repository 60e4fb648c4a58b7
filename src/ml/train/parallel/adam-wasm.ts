// The elementwise part of a sharded step (gradient reduction, Adam) as a small hand-assembled WebAssembly SIMD
// module on the shared memory that holds the flat training state: every worker instantiates it on the same
// memory and updates its own slice, in place, 4 lanes at a time. Float32 arithmetic throughout, one IEEE
// operation at a time (no fused multiply-add), so the scalar tail and update.ts's JavaScript twin give the
// same bits as the vector lanes: where an element falls in a worker's slice never changes its value.
//
// add(dst, src, n):  dst[i] = dst[i] + src[i]
// adam(p, m, v, g, n, b1, c1, b2, c2, stepSize, sqrtBc2, eps):
//   m = b1*m + c1*g;  v = b2*v + c2*(g*g);  p = p - (stepSize*m) / (sqrt(v)/sqrtBc2 + eps)
// (pointers in bytes, n in elements). Assembled with ../../kernels/wasm-asm.ts, as the backend's SIMD kernels are.
import {
  END,
  F32,
  F32X4_SPLAT,
  I32,
  V128,
  get,
  laneEnds,
  locals,
  moduleBytes,
  overLanes,
  plus,
  set,
  tee,
  uleb,
  type Lanes,
} from '../../kernels/wasm-asm.js';

/** add(dst, src, n) */
function addCode(): number[] {
  const [DST, SRC, N, AT, E4, EB] = [0, 1, 2, 3, 4, 5];
  return [
    ...locals([[3, I32]]),
    ...laneEnds(N, E4, EB),
    ...overLanes(AT, E4, EB, (l) => [
      ...plus(DST, AT),
      ...plus(DST, AT),
      ...l.load,
      ...plus(SRC, AT),
      ...l.load,
      ...l.add,
      ...l.store,
    ]),
    END,
  ];
}

/** adam(p, m, v, g, n, b1, c1, b2, c2, stepSize, sqrtBc2, eps) */
function adamCode(): number[] {
  const [P, M, V, G, N] = [0, 1, 2, 3, 4];
  const CONSTS = [5, 6, 7, 8, 9, 10, 11]; // f32 params: b1, c1, b2, c2, stepSize, sqrtBc2, eps
  const [AT, E4, EB] = [12, 13, 14]; // i32 locals
  const SPLATS = [15, 16, 17, 18, 19, 20, 21]; // v128 locals: the constants splatted
  const [VG, VM, VV] = [22, 23, 24]; // v128 locals
  const [FG, FM, FV] = [25, 26, 27]; // f32 locals
  const splats = CONSTS.flatMap((c, i) => [...get(c), ...F32X4_SPLAT, ...set(SPLATS[i])]);
  // One element or four lanes: the same sequence of single float32 operations.
  const body = (l: Lanes) => {
    const k = (i: number) => get(l.vector ? SPLATS[i] : CONSTS[i]);
    const [g, mm, vv] = l.vector ? [VG, VM, VV] : [FG, FM, FV];
    const [B1, C1, B2, C2, ST, SQ, EPS] = [0, 1, 2, 3, 4, 5, 6];
    return [
      ...plus(G, AT),
      ...l.load,
      ...set(g),
      // m = b1*m + c1*g
      ...plus(M, AT),
      ...k(B1),
      ...plus(M, AT),
      ...l.load,
      ...l.mul,
      ...k(C1),
      ...get(g),
      ...l.mul,
      ...l.add,
      ...tee(mm),
      ...l.store,
      // v = b2*v + c2*(g*g)
      ...plus(V, AT),
      ...k(B2),
      ...plus(V, AT),
      ...l.load,
      ...l.mul,
      ...k(C2),
      ...get(g),
      ...get(g),
      ...l.mul,
      ...l.mul,
      ...l.add,
      ...tee(vv),
      ...l.store,
      // p = p - (stepSize*m) / (sqrt(v)/sqrtBc2 + eps)
      ...plus(P, AT),
      ...plus(P, AT),
      ...l.load,
      ...k(ST),
      ...get(mm),
      ...l.mul,
      ...get(vv),
      ...l.sqrt,
      ...k(SQ),
      ...l.div,
      ...k(EPS),
      ...l.add,
      ...l.div,
      ...l.sub,
      ...l.store,
    ];
  };
  return [
    ...locals([
      [3, I32],
      [10, V128],
      [3, F32],
    ]),
    ...splats,
    ...laneEnds(N, E4, EB),
    ...overLanes(AT, E4, EB, body),
    END,
  ];
}

function kernelModule(): Uint8Array {
  // env.memory: shared (flag 3), at least 0 and at most 65536 pages (4 GiB).
  return moduleBytes(
    [0x03, 0, ...uleb(65536)],
    [
      { name: 'add', params: [I32, I32, I32], code: addCode() },
      { name: 'adam', params: [I32, I32, I32, I32, I32, F32, F32, F32, F32, F32, F32, F32], code: adamCode() },
    ],
  );
}

export interface AdamKernels {
  add(dst: number, src: number, n: number): void;
  adam(
    p: number,
    m: number,
    v: number,
    g: number,
    n: number,
    b1: number,
    c1: number,
    b2: number,
    c2: number,
    stepSize: number,
    sqrtBc2: number,
    eps: number,
  ): void;
}

interface WebAssemblyApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: AdamKernels };
  Memory: new (d: { initial: number; maximum: number; shared: boolean }) => SharedMemory;
}
const WA = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

/** A WebAssembly.Memory created shared (its buffer is a SharedArrayBuffer; it can be posted to workers). */
export interface SharedMemory {
  readonly buffer: SharedArrayBuffer;
}

/** Shared memory of at least `bytes` (whole 64 KiB pages). */
export function sharedMemory(bytes: number): SharedMemory {
  const pages = Math.max(1, Math.ceil(bytes / 65536));
  if (pages > 65536) throw new Error(`the flat training state needs ${bytes} bytes, more than wasm's 4 GiB`);
  return new WA.Memory({ initial: pages, maximum: pages, shared: true });
}

let compiled: object | null | undefined;

/** The kernels on `memory`, or undefined where WebAssembly SIMD is not available (update.ts then runs its twin). */
export function adamKernelsFor(memory: SharedMemory): AdamKernels | undefined {
  if (compiled === undefined) {
    const bytes = kernelModule();
    compiled = WA.validate(bytes) ? new WA.Module(bytes) : null;
  }
  if (compiled === null) return undefined;
  return new WA.Instance(compiled, { env: { memory } }).exports;
}
