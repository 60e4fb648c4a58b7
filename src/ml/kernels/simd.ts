import type { WasmMemory } from './wasm-util.js';
import {
  END,
  F32,
  F32_LOAD,
  F32_ONE,
  F32X4_SPLAT,
  I32,
  I32_ADD,
  I32_AND,
  I32_GT_U,
  I32_MUL,
  I32_SHL,
  I32_STORE,
  SELECT,
  V128,
  VECTOR,
  addTo,
  get,
  i32,
  i32Load,
  laneEnds,
  load32Splat,
  locals,
  moduleBytes,
  overLanes,
  plus,
  plusProduct,
  set,
  shuffle32,
  tee,
  uleb,
  v128Load,
  v128Store,
  whileBelow,
  whileBelowTo,
} from './wasm-asm.js';

// A tiny hand-assembled WebAssembly SIMD kernel that runs on the wasm backend's own memory (zero copy).
// JS loops over typed arrays run at ~5 ns per multiply-add here and the stock kernels have no SIMD gradient for
// depthwise filters; this does the inner loops with f32x4 at a fraction of that.
//
// run(triples, count, out, a, b, c): for each of `count` int32 triples (o, i, j) at byte address `triples`:
//   out[o + k] += a[i + k] * b[j + k]  for k in [0, c)      (float32 element offsets; pointers in bytes)
// outer(x, dy, out, m, ci, co): out[ci, co] += x[m, ci]^T @ dy[m, co]   (row-major, pointers in bytes; register tiles
//   when ci % 4 = 0 and co % 8 = 0, else rank-1 updates)
// chanSums / chanAffine: per-channel reductions and affine maps over [m, c] rows (batch norm).
// swishGrad(dy, x, s, out, n): out = dy * s * (1 + x - x*s), the swish gradient from the saved sigmoid.
// seGateGrad(dy, h, s, dh, ds, n, hw, c): both gradients of a squeeze-excitation gate h * s in one pass.
// transpose(src, dst, rows, cols): a 2-D transpose of 4-byte elements in 4 x 4 register blocks.
// Every row loop runs f32x4 lanes, then a scalar tail (overLanes).

/** local * 4 (a float count as bytes). */
const bytes = (local: number) => [...get(local), ...i32(2), I32_SHL];

/** run: for each triple (o, i, j): out[o..] += a[i..] * b[j..] over c floats. */
function tripleMacCode(): number[] {
  const [TRIPLES, COUNT, OUT, A, B, C, T, TEND, O, IA, IB, J, C4, CB] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
  // dst = base + triple[offset] * 4
  const pointer = (dst: number, base: number, offset: number) => [
    ...get(base),
    ...get(T),
    ...i32Load(offset),
    ...i32(2),
    I32_SHL,
    I32_ADD,
    ...set(dst),
  ];
  return [
    ...locals([[8, I32]]),
    ...laneEnds(C, C4, CB),
    ...get(TRIPLES),
    ...set(T),
    ...get(TRIPLES),
    ...get(COUNT),
    ...i32(12),
    I32_MUL,
    I32_ADD,
    ...set(TEND),
    ...whileBelow(T, TEND, 12, [
      ...pointer(O, OUT, 0),
      ...pointer(IA, A, 4),
      ...pointer(IB, B, 8),
      ...overLanes(J, C4, CB, (l) => [
        ...plus(O, J),
        ...plus(O, J),
        ...l.load,
        ...plus(IA, J),
        ...l.load,
        ...plus(IB, J),
        ...l.load,
        ...l.mul,
        ...l.add,
        ...l.store,
      ]),
    ]),
    END,
  ];
}

/** outer: rank-1 updates: for each row m, for each ci: out[ci, :] += x[m, ci] * dy[m, :] (dy row stays in L1). */
function outerCode(): number[] {
  const [X, DY, OUT, M, CI, CO, MI, CII, XROW, DYROW, OUTROW, K, CO4, COB, S, SF] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
  ];
  return [
    ...locals([
      [8, I32],
      [1, V128],
      [1, F32],
    ]),
    ...laneEnds(CO, CO4, COB),
    ...i32(0),
    ...set(MI),
    ...get(X),
    ...set(XROW),
    ...get(DY),
    ...set(DYROW),
    ...whileBelow(MI, M, 1, [
      ...i32(0),
      ...set(CII),
      ...get(OUT),
      ...set(OUTROW),
      ...whileBelow(CII, CI, 1, [
        ...get(XROW),
        ...bytes(CII),
        I32_ADD,
        ...F32_LOAD,
        ...tee(SF),
        ...F32X4_SPLAT,
        ...set(S),
        ...overLanes(K, CO4, COB, (l) => [
          ...plus(OUTROW, K),
          ...plus(OUTROW, K),
          ...l.load,
          ...get(l.vector ? S : SF),
          ...plus(DYROW, K),
          ...l.load,
          ...l.mul,
          ...l.add,
          ...l.store,
        ]),
        ...addTo(OUTROW, get(COB)),
      ]),
      ...addTo(XROW, bytes(CI)),
      ...addTo(DYROW, get(COB)),
    ]),
    END,
  ];
}

/** outer4(x, dy, out, quads, ci, co): like outer over 4*quads rows, four rows per pass over out (4x fewer
 *  loads/stores of out). The caller runs the remaining rows with outer. */
function outer4Code(): number[] {
  const [X, DY, OUT, Q, CI, CO] = [0, 1, 2, 3, 4, 5];
  const [QI, CII, XROW, DYROW, OUTROW, K, CO4, COB, CIB, P, D2, D3] = [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17];
  const S = [18, 19, 20, 21]; // v128: x[r, ci] splat, rows r = 0..3
  const F = [22, 23, 24, 25]; // f32: the same scalars
  // x row r starts at XROW + r * CIB; dy row r at P + r * COB.
  const xRowOffset = [
    [],
    [...get(CIB), I32_ADD],
    [...get(CIB), ...i32(1), I32_SHL, I32_ADD],
    [...get(CIB), ...i32(3), I32_MUL, I32_ADD],
  ];
  const dyRow = [get(P), plus(P, COB), plus(P, D2), plus(P, D3)];
  const splats = [0, 1, 2, 3].flatMap((r) => [
    ...get(XROW),
    ...xRowOffset[r],
    ...bytes(CII),
    I32_ADD,
    ...F32_LOAD,
    ...tee(F[r]),
    ...F32X4_SPLAT,
    ...set(S[r]),
  ]);
  return [
    ...locals([
      [12, I32],
      [4, V128],
      [4, F32],
    ]),
    ...laneEnds(CO, CO4, COB),
    ...bytes(CI),
    ...set(CIB),
    ...get(COB),
    ...i32(1),
    I32_SHL,
    ...set(D2),
    ...plus(COB, D2),
    ...set(D3),
    ...i32(0),
    ...set(QI),
    ...get(X),
    ...set(XROW),
    ...get(DY),
    ...set(DYROW),
    ...whileBelow(QI, Q, 1, [
      ...i32(0),
      ...set(CII),
      ...get(OUT),
      ...set(OUTROW),
      ...whileBelow(CII, CI, 1, [
        ...splats,
        ...overLanes(K, CO4, COB, (l) => [
          ...plus(DYROW, K),
          ...set(P),
          ...plus(OUTROW, K),
          ...plus(OUTROW, K),
          ...l.load,
          ...[0, 1, 2, 3].flatMap((r) => [...get(l.vector ? S[r] : F[r]), ...dyRow[r], ...l.load, ...l.mul, ...l.add]),
          ...l.store,
        ]),
        ...addTo(OUTROW, get(COB)),
      ]),
      ...addTo(XROW, bytes(CIB)),
      ...addTo(DYROW, bytes(COB)),
    ]),
    END,
  ];
}

/**
 * outerTiles(x, dy, out, m, ci, co, rows): out[ci, co] += x[m, ci]^T @ dy[m, co] for ci % 4 = 0 and co % 8 = 0, in
 * register tiles of 4 x 8 outputs (eight f32x4 accumulators) that stream down the rows: per row, four splats of x
 * and two vectors of dy make 32 multiply-adds, with no load or store of out (outer4 has one of each per 16). The
 * rows go in chunks of `rows` so that a chunk of x and dy stays in cache while every tile passes over it. Each
 * output is still the m-ordered sum of rounded products (mul, then add), so the bits equal outer's.
 */
function outerTilesCode(): number[] {
  const [X, DY, OUT, M, CI, CO, ROWS] = [0, 1, 2, 3, 4, 5, 6];
  const [CIB, COB, M0, M1, CB, NB, XP, DP, I, O0, O1, O2, O3] = [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19];
  const A = [20, 21, 22, 23, 24, 25, 26, 27]; // v128 accumulators: out rows r = 0..3, columns +0..3 and +4..7
  const [D0, D1, S] = [28, 29, 30]; // v128
  const rowPtr = [O0, O1, O2, O3];
  const eachAcc = (f: (acc: number, row: number, half: number) => number[]) =>
    A.flatMap((acc, k) => f(acc, k >> 1, k & 1));
  const madd = (acc: number, d: number) => [
    ...get(acc),
    ...get(S),
    ...get(d),
    ...VECTOR.mul,
    ...VECTOR.add,
    ...set(acc),
  ];
  return [
    ...locals([
      [13, I32],
      [11, V128],
    ]),
    ...bytes(CI),
    ...set(CIB),
    ...bytes(CO),
    ...set(COB),
    ...i32(0),
    ...set(M0),
    ...whileBelowTo(M0, M, M1, [
      // M1 = min(M0 + rows, m)
      ...get(M),
      ...plus(M0, ROWS),
      ...tee(M1),
      ...get(M1),
      ...get(M),
      I32_GT_U,
      SELECT,
      ...set(M1),
      ...i32(0),
      ...set(CB),
      ...whileBelow(CB, CIB, 16, [
        ...i32(0),
        ...set(NB),
        ...whileBelow(NB, COB, 32, [
          // Out row r of the tile starts at out + (CB / 4 + r) * COB + NB.
          ...plusProduct(OUT, CB, CO),
          ...get(NB),
          I32_ADD,
          ...set(O0),
          ...plus(O0, COB),
          ...set(O1),
          ...plus(O1, COB),
          ...set(O2),
          ...plus(O2, COB),
          ...set(O3),
          ...eachAcc((acc, r, half) => [...get(rowPtr[r]), ...v128Load(16 * half), ...set(acc)]),
          ...plusProduct(X, M0, CIB),
          ...get(CB),
          I32_ADD,
          ...set(XP),
          ...plusProduct(DY, M0, COB),
          ...get(NB),
          I32_ADD,
          ...set(DP),
          ...get(M0),
          ...set(I),
          ...whileBelow(I, M1, 1, [
            ...get(DP),
            ...v128Load(0),
            ...set(D0),
            ...get(DP),
            ...v128Load(16),
            ...set(D1),
            ...[0, 1, 2, 3].flatMap((r) => [
              ...get(XP),
              ...load32Splat(4 * r),
              ...set(S),
              ...madd(A[2 * r], D0),
              ...madd(A[2 * r + 1], D1),
            ]),
            ...addTo(XP, get(CIB)),
            ...addTo(DP, get(COB)),
          ]),
          ...eachAcc((acc, r, half) => [...get(rowPtr[r]), ...get(acc), ...v128Store(16 * half)]),
        ]),
      ]),
    ]),
    END,
  ];
}

/**
 * chanSums(a, u, b, v, s1, s2, m, c): for rows i < m, channels j < c:
 *   s1[j] += a[i,j] - u[j];   s2[j] += (a[i,j] - u[j]) * (b[i,j] - v[j])
 */
function chanSumsCode(): number[] {
  const [A, U, B, V, S1, S2, M, C] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [I, J, RA, RB, C4, CB] = [8, 9, 10, 11, 12, 13];
  const DA = 14; // v128
  const FA = 15; // f32
  return [
    ...locals([
      [6, I32],
      [1, V128],
      [1, F32],
    ]),
    ...laneEnds(C, C4, CB),
    ...i32(0),
    ...set(I),
    ...get(A),
    ...set(RA),
    ...get(B),
    ...set(RB),
    ...whileBelow(I, M, 1, [
      ...overLanes(J, C4, CB, (l) => {
        const d = l.vector ? DA : FA;
        return [
          ...plus(RA, J),
          ...l.load,
          ...plus(U, J),
          ...l.load,
          ...l.sub,
          ...set(d),
          ...plus(S1, J),
          ...plus(S1, J),
          ...l.load,
          ...get(d),
          ...l.add,
          ...l.store,
          ...plus(S2, J),
          ...plus(S2, J),
          ...l.load,
          ...get(d),
          ...plus(RB, J),
          ...l.load,
          ...plus(V, J),
          ...l.load,
          ...l.sub,
          ...l.mul,
          ...l.add,
          ...l.store,
        ];
      }),
      ...addTo(RA, get(CB)),
      ...addTo(RB, get(CB)),
    ]),
    END,
  ];
}

/** chanAffine(a, p, b, q, r, out, m, c): out[i,j] = a[i,j] * p[j] + b[i,j] * q[j] + r[j]. */
function chanAffineCode(): number[] {
  const [A, P, B, Q, R, OUT, M, C] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [I, J, RA, RB, RO, C4, CB] = [8, 9, 10, 11, 12, 13, 14];
  return [
    ...locals([[7, I32]]),
    ...laneEnds(C, C4, CB),
    ...i32(0),
    ...set(I),
    ...get(A),
    ...set(RA),
    ...get(B),
    ...set(RB),
    ...get(OUT),
    ...set(RO),
    ...whileBelow(I, M, 1, [
      ...overLanes(J, C4, CB, (l) => [
        ...plus(RO, J),
        ...plus(RA, J),
        ...l.load,
        ...plus(P, J),
        ...l.load,
        ...l.mul,
        ...plus(RB, J),
        ...l.load,
        ...plus(Q, J),
        ...l.load,
        ...l.mul,
        ...l.add,
        ...plus(R, J),
        ...l.load,
        ...l.add,
        ...l.store,
      ]),
      ...addTo(RA, get(CB)),
      ...addTo(RB, get(CB)),
      ...addTo(RO, get(CB)),
    ]),
    END,
  ];
}

/** swishGrad(dy, x, s, out, n, _): out = dy * s * (1 + x - x * s), s = sigmoid(x); n elements. */
function swishGradCode(): number[] {
  const [DY, X, S, OUT, N] = [0, 1, 2, 3, 4];
  const [J, N4, NB, ONE] = [6, 7, 8, 9]; // ONE: v128
  return [
    ...locals([
      [3, I32],
      [1, V128],
    ]),
    ...laneEnds(N, N4, NB),
    ...F32_ONE,
    ...F32X4_SPLAT,
    ...set(ONE),
    ...overLanes(J, N4, NB, (l) => [
      ...plus(OUT, J),
      ...plus(DY, J),
      ...l.load,
      ...plus(S, J),
      ...l.load,
      ...l.mul,
      ...(l.vector ? get(ONE) : F32_ONE),
      ...plus(X, J),
      ...l.load,
      ...plus(X, J),
      ...l.load,
      ...plus(S, J),
      ...l.load,
      ...l.mul,
      ...l.sub,
      ...l.add,
      ...l.mul,
      ...l.store,
    ]),
    END,
  ];
}

/**
 * seGateGrad(dy, h, s, dh, ds, n, hw, c): the gradient of y[i, j, :] = h[i, j, :] * s[i, :] (a squeeze-excitation
 * gate over n images of hw positions and c channels) in one pass: dh = dy * s, and ds[i, :] += dy * h over j in
 * order (the caller zeroes ds). The stock gradient takes two full-size products, a transpose and a sum; the
 * products and the j-ordered float32 sums are the same, so are the bits.
 */
function seGateGradCode(): number[] {
  const [DY, H, S, DH, DS, N, HW, C] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [I, J, K, C4, CB, SR, DR, PDY, PH, PDH] = [8, 9, 10, 11, 12, 13, 14, 15, 16, 17];
  const DV = 18; // v128
  const DF = 19; // f32
  return [
    ...locals([
      [10, I32],
      [1, V128],
      [1, F32],
    ]),
    ...laneEnds(C, C4, CB),
    ...get(DY),
    ...set(PDY),
    ...get(H),
    ...set(PH),
    ...get(DH),
    ...set(PDH),
    ...i32(0),
    ...set(I),
    ...whileBelow(I, N, 1, [
      ...plusProduct(S, I, CB),
      ...set(SR),
      ...plusProduct(DS, I, CB),
      ...set(DR),
      ...i32(0),
      ...set(J),
      ...whileBelow(J, HW, 1, [
        ...overLanes(K, C4, CB, (l) => {
          const d = l.vector ? DV : DF;
          return [
            ...plus(PDH, K),
            ...plus(PDY, K),
            ...l.load,
            ...tee(d),
            ...plus(SR, K),
            ...l.load,
            ...l.mul,
            ...l.store,
            ...plus(DR, K),
            ...plus(DR, K),
            ...l.load,
            ...get(d),
            ...plus(PH, K),
            ...l.load,
            ...l.mul,
            ...l.add,
            ...l.store,
          ];
        }),
        ...addTo(PDY, get(CB)),
        ...addTo(PH, get(CB)),
        ...addTo(PDH, get(CB)),
      ]),
    ]),
    END,
  ];
}

/**
 * transpose(src, dst, rows, cols, _, _): dst[cols, rows] = src[rows, cols]^T for 4-byte elements. 4 x 4 blocks go
 * through registers (four row loads, eight lane shuffles, four column stores); the ragged edges are copied one
 * element at a time. Pure data movement, so the bits are the stock kernel's.
 */
function transposeCode(): number[] {
  const [SRC, DST, R, C] = [0, 1, 2, 3];
  const [R4, C4, I, J, P, Q] = [6, 7, 8, 9, 10, 11];
  const [V0, V1, V2, V3, T0, T1, T2, T3] = [12, 13, 14, 15, 16, 17, 18, 19];
  // local = base + (a * b + c) * 4
  const address = (local: number, base: number, a: number, b: number, c: number) => [
    ...get(base),
    ...get(a),
    ...get(b),
    I32_MUL,
    ...get(c),
    I32_ADD,
    ...i32(2),
    I32_SHL,
    I32_ADD,
    ...set(local),
  ];
  // base + k rows of n floats
  const rowsOn = (base: number, n: number, k: number) => [
    ...get(base),
    ...(k ? [...get(n), ...i32(4 * k), I32_MUL, I32_ADD] : []),
  ];
  const loadRow = (k: number, v: number) => [...rowsOn(P, C, k), ...VECTOR.load, ...set(v)];
  const lanes = (a: number, b: number, pick: [number, number, number, number]) => [
    ...get(a),
    ...get(b),
    ...shuffle32(pick),
  ];
  const storeCol = (k: number, a: number, b: number, pick: [number, number, number, number]) => [
    ...rowsOn(Q, R, k),
    ...lanes(a, b, pick),
    ...VECTOR.store,
  ];
  const element = [
    ...address(P, SRC, I, C, J),
    ...address(Q, DST, J, R, I),
    ...get(Q),
    ...get(P),
    ...i32Load(0),
    ...I32_STORE,
  ];
  const from = (local: number, start: number[]) => [...start, ...set(local)];
  return [
    ...locals([
      [6, I32],
      [8, V128],
    ]),
    ...from(R4, [...get(R), ...i32(-4), I32_AND]),
    ...from(C4, [...get(C), ...i32(-4), I32_AND]),
    ...from(I, i32(0)),
    ...whileBelow(I, R4, 4, [
      ...from(J, i32(0)),
      ...whileBelow(J, C4, 4, [
        ...address(P, SRC, I, C, J),
        ...address(Q, DST, J, R, I),
        ...loadRow(0, V0),
        ...loadRow(1, V1),
        ...loadRow(2, V2),
        ...loadRow(3, V3),
        ...lanes(V0, V1, [0, 4, 1, 5]),
        ...set(T0),
        ...lanes(V0, V1, [2, 6, 3, 7]),
        ...set(T1),
        ...lanes(V2, V3, [0, 4, 1, 5]),
        ...set(T2),
        ...lanes(V2, V3, [2, 6, 3, 7]),
        ...set(T3),
        ...storeCol(0, T0, T2, [0, 1, 4, 5]),
        ...storeCol(1, T0, T2, [2, 3, 6, 7]),
        ...storeCol(2, T1, T3, [0, 1, 4, 5]),
        ...storeCol(3, T1, T3, [2, 3, 6, 7]),
      ]),
    ]),
    // The ragged edges: the last cols % 4 columns of the first rows - rows % 4 rows, then the last rows % 4 rows.
    ...from(I, i32(0)),
    ...whileBelow(I, R4, 1, [...from(J, get(C4)), ...whileBelow(J, C, 1, element)]),
    ...whileBelow(I, R, 1, [...from(J, i32(0)), ...whileBelow(J, C, 1, element)]),
    END,
  ];
}

function kernelModule(): Uint8Array {
  const params = (n: number) => new Array<number>(n).fill(I32);
  return moduleBytes(
    [0x00, ...uleb(1)],
    [
      { name: 'run', params: params(6), code: tripleMacCode() },
      { name: 'outer', params: params(6), code: outerCode() },
      { name: 'outer4', params: params(6), code: outer4Code() },
      { name: 'outerTiles', params: params(7), code: outerTilesCode() },
      { name: 'chanSums', params: params(8), code: chanSumsCode() },
      { name: 'chanAffine', params: params(8), code: chanAffineCode() },
      { name: 'swishGrad', params: params(6), code: swishGradCode() },
      { name: 'seGateGrad', params: params(8), code: seGateGradCode() },
      { name: 'transpose', params: params(6), code: transposeCode() },
    ],
  );
}

interface WebAssemblyApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (
    module: object,
    imports: Record<string, Record<string, unknown>>,
  ) => { exports: Record<string, unknown> };
}
const WA = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

export type TripleMac = (triples: number, count: number, out: number, a: number, b: number, c: number) => void;
export type OuterAccumulate = (x: number, dy: number, out: number, m: number, ci: number, co: number) => void;
export type ChanSums = (
  a: number,
  u: number,
  b: number,
  v: number,
  s1: number,
  s2: number,
  m: number,
  c: number,
) => void;
export type ChanAffine = (
  a: number,
  p: number,
  b: number,
  q: number,
  r: number,
  out: number,
  m: number,
  c: number,
) => void;
export type SwishGrad = (dy: number, x: number, s: number, out: number, n: number, unused: number) => void;
export type Transpose2d = (
  src: number,
  dst: number,
  rows: number,
  cols: number,
  unused1: number,
  unused2: number,
) => void;
export type SeGateGrad = (
  dy: number,
  h: number,
  s: number,
  dh: number,
  ds: number,
  n: number,
  hw: number,
  c: number,
) => void;
export interface SimdKernels {
  swishGrad: SwishGrad;
  seGateGrad: SeGateGrad;
  transpose: Transpose2d;
  tripleMac: TripleMac;
  outer: OuterAccumulate;
  chanSums: ChanSums;
  chanAffine: ChanAffine;
}

const instances = new WeakMap<WasmMemory, SimdKernels | null>();
let enabled = true;

/** Turns the SIMD kernels off (every caller then takes its fallback path); for tests and comparisons. */
export function setSimdEnabled(on: boolean): void {
  enabled = on;
}

/** The kernels bound to a wasm memory (compiled once per memory). Undefined if wasm SIMD is unavailable. */
export function simdKernelsFor(memory: WasmMemory): SimdKernels | undefined {
  if (!enabled) return undefined;
  let k = instances.get(memory);
  if (k === undefined) {
    const bytes = kernelModule();
    if (WA.validate(bytes)) {
      const { exports } = new WA.Instance(new WA.Module(bytes), { env: { memory } });
      const outer1 = exports.outer as OuterAccumulate;
      const outer4 = exports.outer4 as OuterAccumulate;
      const outerTiles = exports.outerTiles as (...args: number[]) => void;
      k = {
        tripleMac: exports.run as TripleMac,
        chanSums: exports.chanSums as ChanSums,
        swishGrad: exports.swishGrad as SwishGrad,
        seGateGrad: exports.seGateGrad as SeGateGrad,
        transpose: exports.transpose as Transpose2d,
        chanAffine: exports.chanAffine as ChanAffine,
        outer: (x, dy, out, m, ci, co) => {
          if (ci % 4 === 0 && co % 8 === 0) {
            // Chunks of about 64 KiB of x and dy rows (L2-resident while every tile passes over them).
            outerTiles(x, dy, out, m, ci, co, Math.max(8, Math.floor(16384 / (ci + co))));
            return;
          }
          const quads = m >> 2;
          if (quads > 0) outer4(x, dy, out, quads, ci, co);
          const done = quads * 4;
          if (done < m) outer1(x + done * ci * 4, dy + done * co * 4, out, m - done, ci, co);
        },
      };
    } else {
      k = null;
    }
    instances.set(memory, k);
  }
  return k ?? undefined;
}

export function tripleMacFor(memory: WasmMemory): TripleMac | undefined {
  return simdKernelsFor(memory)?.tripleMac;
}
