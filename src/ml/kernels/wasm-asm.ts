// A small WebAssembly assembler for the hand-written SIMD kernels: LEB128 encodings, the opcodes they use,
// loop combinators, and a module writer. No library emits wasm bytecode from TypeScript at this size; this keeps
// every kernel one readable loop nest instead of a flat list of opcodes.

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const str = (s: string) => [...uleb(s.length), ...Buffer.from(s, 'utf8')];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];

export const BLOCK = [0x02, 0x40];
export const LOOP = [0x03, 0x40];
export const END = 0x0b;
export const br = (label: number) => [0x0c, ...uleb(label)];
export const brIf = (label: number) => [0x0d, ...uleb(label)];
export const get = (local: number) => [0x20, ...uleb(local)];
export const set = (local: number) => [0x21, ...uleb(local)];
export const tee = (local: number) => [0x22, ...uleb(local)];
export const i32 = (v: number) => [0x41, ...sleb(v)];
export const I32_ADD = 0x6a;
export const I32_MUL = 0x6c;
export const I32_AND = 0x71;
export const I32_SHL = 0x74;
export const I32_GE_U = 0x4f;
export const I32_GT_U = 0x4b;
/** select: the first operand when the third (i32) is non-zero, else the second. */
export const SELECT = 0x1b;
export const i32Load = (offset: number) => [0x28, 2, ...uleb(offset)];
export const I32_STORE = [0x36, 2, 0];
export const F32_LOAD = [0x2a, 2, 0];
export const F32X4_SPLAT = [0xfd, ...uleb(19)];
/** i8x16.shuffle picking four 32-bit lanes (0-3: the first operand's, 4-7: the second's). */
export const shuffle32 = (lanes: [number, number, number, number]) => [
  0xfd,
  ...uleb(13),
  ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]),
];
/** f32.const 1.0 */
export const F32_ONE = [0x43, 0x00, 0x00, 0x80, 0x3f];

/** Value types, for locals and params. */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;

/** The float32 instructions of one loop body, either 4 lanes at once (v128) or one element. */
export interface Lanes {
  readonly vector: boolean;
  readonly load: number[];
  readonly store: number[];
  readonly add: number[];
  readonly sub: number[];
  readonly mul: number[];
  readonly div: number[];
  readonly sqrt: number[];
}
const simd = (op: number) => [0xfd, ...uleb(op)];
/** v128.load / v128.store / v128.load32_splat at a constant byte offset from the address on the stack. */
export const v128Load = (offset: number) => [...simd(0x00), 0, ...uleb(offset)];
export const v128Store = (offset: number) => [...simd(0x0b), 0, ...uleb(offset)];
export const load32Splat = (offset: number) => [...simd(0x09), 0, ...uleb(offset)];
export const VECTOR: Lanes = {
  vector: true,
  load: v128Load(0),
  store: v128Store(0),
  add: simd(228),
  sub: simd(229),
  mul: simd(230),
  div: simd(231),
  sqrt: simd(227),
};
export const SCALAR: Lanes = {
  vector: false,
  load: F32_LOAD,
  store: [0x38, 2, 0],
  add: [0x92],
  sub: [0x93],
  mul: [0x94],
  div: [0x95],
  sqrt: [0x91],
};

/** The address base + at (two locals) as instructions. */
export const plus = (base: number, at: number) => [...get(base), ...get(at), I32_ADD];

/** The address base + a * b (three locals) as instructions: row a of a matrix with rows of b bytes. */
export const plusProduct = (base: number, a: number, b: number) => [
  ...get(base),
  ...get(a),
  ...get(b),
  I32_MUL,
  I32_ADD,
];

/** local += amount (instructions that leave one i32). */
export const addTo = (local: number, amount: number[]) => [...get(local), ...amount, I32_ADD, ...set(local)];

/** while (counter < limit) { body; advance }, unsigned; the caller sets the counter first. */
function loopBelow(counter: number, limit: number, body: number[], advance: number[]): number[] {
  return [
    ...BLOCK,
    ...LOOP,
    ...get(counter),
    ...get(limit),
    I32_GE_U,
    ...brIf(1),
    ...body,
    ...advance,
    ...br(0),
    END,
    END,
  ];
}

/** while (counter < limit) { body; counter += step }, unsigned; the caller sets the counter first. */
export function whileBelow(counter: number, limit: number, step: number, body: number[]): number[] {
  return loopBelow(counter, limit, body, addTo(counter, i32(step)));
}

/** while (counter < limit) { body; counter = next }, unsigned: for loops over chunks whose body sets `next`. */
export function whileBelowTo(counter: number, limit: number, next: number, body: number[]): number[] {
  return loopBelow(counter, limit, body, [...get(next), ...set(counter)]);
}

/** vectorEnd = (n & ~3) * 4 and end = n * 4: the byte ends of a row of n floats' vector part and of the row. */
export function laneEnds(n: number, vectorEnd: number, end: number): number[] {
  return [
    ...get(n),
    ...i32(-4),
    I32_AND,
    ...i32(2),
    I32_SHL,
    ...set(vectorEnd),
    ...get(n),
    ...i32(2),
    I32_SHL,
    ...set(end),
  ];
}

/** One pass over a row: byte offset `at` from 0 to vectorEnd 16 bytes at a time, then to end 4 at a time. */
export function overLanes(at: number, vectorEnd: number, end: number, body: (lanes: Lanes) => number[]): number[] {
  return [
    ...i32(0),
    ...set(at),
    ...whileBelow(at, vectorEnd, 16, body(VECTOR)),
    ...whileBelow(at, end, 4, body(SCALAR)),
  ];
}

/** A function's locals, grouped by type in order: [[count, type], ...]. */
export const locals = (groups: [number, number][]) => [
  ...uleb(groups.length),
  ...groups.flatMap(([n, t]) => [...uleb(n), t]),
];

export interface WasmFunction {
  name: string;
  params: number[];
  /** locals then instructions, ending with END */
  code: number[];
}

/**
 * A module importing env.memory (limits as encoded: flag, min[, max]) and exporting each function by name;
 * every function returns nothing. Types are shared between functions with the same params.
 */
export function moduleBytes(memoryLimits: number[], functions: WasmFunction[]): Uint8Array {
  const types: string[] = [];
  const typeOf = functions.map((f) => {
    const key = JSON.stringify(f.params);
    if (!types.includes(key)) types.push(key);
    return types.indexOf(key);
  });
  const typeEntries = types.flatMap((key) => {
    const params = JSON.parse(key) as number[];
    return [0x60, ...uleb(params.length), ...params, 0];
  });
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [...uleb(types.length), ...typeEntries]),
    ...section(2, [1, ...str('env'), ...str('memory'), 0x02, ...memoryLimits]),
    ...section(3, [...uleb(functions.length), ...typeOf.flatMap((t) => uleb(t))]),
    ...section(7, [...uleb(functions.length), ...functions.flatMap((f, i) => [...str(f.name), 0x00, ...uleb(i)])]),
    ...section(10, [...uleb(functions.length), ...functions.flatMap((f) => [...uleb(f.code.length), ...f.code])]),
  ]);
}
