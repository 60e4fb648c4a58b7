// The elementwise part of a sharded step (gradient reduction, Adam) as a small hand-assembled WebAssembly SIMD
// module on the shared memory that holds the flat training state: every worker instantiates it on the same
// memory and updates its own slice, in place, 4 lanes at a time. Float32 arithmetic throughout, one IEEE
// operation at a time (no fused multiply-add), so the scalar tail and update.ts's JavaScript twin give the
// same bits as the vector lanes: where an element falls in a worker's slice never changes its value.
//
// add(dst, src, n):  dst[i] = dst[i] + src[i]
// adam(p, m, v, g, n, b1, c1, b2, c2, stepSize, sqrtBc2, eps):
//   m = b1*m + c1*g;  v = b2*v + c2*(g*g);  p = p - (stepSize*m) / (sqrt(v)/sqrtBc2 + eps)
// (pointers in bytes, n in elements).

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}
const str = (s: string) => [...uleb(s.length), ...Buffer.from(s, 'utf8')];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];

const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const i32 = (v: number) => [0x41, ...uleb(v & 0x3f)]; // small non-negative constants only
const BLOCK = [0x02, 0x40];
const LOOP = [0x03, 0x40];
const END = 0x0b;
const BR0 = [0x0c, 0];
const BRIF1 = [0x0d, 1];
const I32_ADD = 0x6a;
const I32_AND = 0x71;
const I32_SHL = 0x74;
const I32_GE_U = 0x4f;
const simd = (op: number) => [0xfd, ...uleb(op)];
const V_LOAD = [...simd(0), 4, 0];
const V_STORE = [...simd(11), 4, 0];
const [V_SPLAT, V_SQRT, V_ADD, V_SUB, V_MUL, V_DIV] = [19, 227, 228, 229, 230, 231].map(simd);
const F_LOAD = [0x2a, 2, 0];
const F_STORE = [0x38, 2, 0];
const [F_SQRT, F_ADD, F_SUB, F_MUL, F_DIV] = [[0x91], [0x92], [0x93], [0x94], [0x95]];

/** Element-wise loop: `vector` then `scalar` bodies at byte offset I (a local), 16 then 4 bytes per pass. */
function loops(n: number, i: number, end4: number, endB: number, vector: number[], scalar: number[]): number[] {
  const pass = (end: number, body: number[], stride: number) => [
    ...BLOCK,
    ...LOOP,
    ...get(i),
    ...get(end),
    I32_GE_U,
    ...BRIF1,
    ...body,
    ...get(i),
    ...i32(stride),
    I32_ADD,
    ...set(i),
    ...BR0,
    END,
    END,
  ];
  return [
    // end4 = (n & ~3) * 4, endB = n * 4
    ...get(n),
    0x41,
    0x7c, // i32.const -4
    I32_AND,
    ...i32(2),
    I32_SHL,
    ...set(end4),
    ...get(n),
    ...i32(2),
    I32_SHL,
    ...set(endB),
    ...i32(0),
    ...set(i),
    ...pass(end4, vector, 16),
    ...pass(endB, scalar, 4),
  ];
}

/** add(dst, src, n) */
function addBody(): number[] {
  const [DST, SRC, N, I, E4, EB] = [0, 1, 2, 3, 4, 5];
  const at = (p: number) => [...get(p), ...get(I), I32_ADD];
  const vector = [...at(DST), ...at(DST), ...V_LOAD, ...at(SRC), ...V_LOAD, ...V_ADD, ...V_STORE];
  const scalar = [...at(DST), ...at(DST), ...F_LOAD, ...at(SRC), ...F_LOAD, ...F_ADD, ...F_STORE];
  const locals = [1, 3, 0x7f];
  return [...locals, ...loops(N, I, E4, EB, vector, scalar), END];
}

/** adam(p, m, v, g, n, b1, c1, b2, c2, stepSize, sqrtBc2, eps) */
function adamBody(): number[] {
  const [P, M, V, G, N] = [0, 1, 2, 3, 4];
  const [B1, C1, B2, C2, ST, SQ, EPS] = [5, 6, 7, 8, 9, 10, 11]; // f32 params
  const [I, E4, EB] = [12, 13, 14]; // i32 locals
  const [VB1, VC1, VB2, VC2, VST, VSQ, VEPS, VG, VM, VV] = [15, 16, 17, 18, 19, 20, 21, 22, 23, 24]; // v128
  const [FG, FM, FV] = [25, 26, 27]; // f32 locals
  const at = (p: number) => [...get(p), ...get(I), I32_ADD];
  const splats = [
    [B1, VB1],
    [C1, VC1],
    [B2, VB2],
    [C2, VC2],
    [ST, VST],
    [SQ, VSQ],
    [EPS, VEPS],
  ].flatMap(([f, v]) => [...get(f), ...V_SPLAT, ...set(v)]);
  // One element (or four lanes): the same sequence of single float32 operations.
  const body = (
    load: number[],
    store: number[],
    add: number[],
    sub: number[],
    mul: number[],
    div: number[],
    sqrt: number[],
    k: (x: number) => number, // constant local: vector splat or scalar param
    g: number,
    mm: number,
    vv: number,
  ) => [
    ...at(G),
    ...load,
    ...set(g),
    // m = b1*m + c1*g
    ...at(M),
    ...get(k(B1)),
    ...at(M),
    ...load,
    ...mul,
    ...get(k(C1)),
    ...get(g),
    ...mul,
    ...add,
    0x22,
    ...uleb(mm), // local.tee
    ...store,
    // v = b2*v + c2*(g*g)
    ...at(V),
    ...get(k(B2)),
    ...at(V),
    ...load,
    ...mul,
    ...get(k(C2)),
    ...get(g),
    ...get(g),
    ...mul,
    ...mul,
    ...add,
    0x22,
    ...uleb(vv),
    ...store,
    // p = p - (stepSize*m) / (sqrt(v)/sqrtBc2 + eps)
    ...at(P),
    ...at(P),
    ...load,
    ...get(k(ST)),
    ...get(mm),
    ...mul,
    ...get(vv),
    ...sqrt,
    ...get(k(SQ)),
    ...div,
    ...get(k(EPS)),
    ...add,
    ...div,
    ...sub,
    ...store,
  ];
  const vk = (x: number) => ({ [B1]: VB1, [C1]: VC1, [B2]: VB2, [C2]: VC2, [ST]: VST, [SQ]: VSQ, [EPS]: VEPS })[x];
  const vector = body(V_LOAD, V_STORE, V_ADD, V_SUB, V_MUL, V_DIV, V_SQRT, vk, VG, VM, VV);
  const scalar = body(F_LOAD, F_STORE, F_ADD, F_SUB, F_MUL, F_DIV, F_SQRT, (x) => x, FG, FM, FV);
  const locals = [3, 3, 0x7f, 10, 0x7b, 3, 0x7d]; // 3 x i32, 10 x v128, 3 x f32
  return [...locals, ...splats, ...loops(N, I, E4, EB, vector, scalar), END];
}

function moduleBytes(): Uint8Array {
  const add = addBody();
  const adam = adamBody();
  const I = 0x7f;
  const F = 0x7d;
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [2, 0x60, 3, I, I, I, 0, 0x60, 12, I, I, I, I, I, F, F, F, F, F, F, F, 0]),
    // env.memory: shared, at least 0 and at most 65536 pages (4 GiB)
    ...section(2, [1, ...str('env'), ...str('memory'), 0x02, 0x03, 0, ...uleb(65536)]),
    ...section(3, [2, 0, 1]),
    ...section(7, [2, ...str('add'), 0x00, 0, ...str('adam'), 0x00, 1]),
    ...section(10, [2, ...uleb(add.length), ...add, ...uleb(adam.length), ...adam]),
  ]);
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
    const bytes = moduleBytes();
    compiled = WA.validate(bytes) ? new WA.Module(bytes) : null;
  }
  if (compiled === null) return undefined;
  return new WA.Instance(compiled, { env: { memory } }).exports;
}
