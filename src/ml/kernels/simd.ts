import type { WasmMemory } from './wasm-util.js';

// A tiny hand-assembled WebAssembly SIMD kernel that runs on the wasm backend's own memory (zero copy).
// JS loops over typed arrays run at ~5 ns per multiply-add here and the stock kernels have no SIMD gradient for
// depthwise filters; this does the inner loops with f32x4 at a fraction of that.
//
// run(triples, count, out, a, b, c): for each of `count` int32 triples (o, i, j) at byte address `triples`:
//   out[o + k] += a[i + k] * b[j + k]  for k in [0, c)      (float32 element offsets; pointers in bytes)
// outer(x, dy, out, m, ci, co): out[ci, co] += x[m, ci]^T @ dy[m, co]   (row-major, pointers in bytes)
// chanSums / chanAffine: per-channel reductions and affine maps over [m, c] rows (batch norm).
// swishGrad(dy, x, s, out, n): out = dy * s * (1 + x - x*s), the swish gradient from the saved sigmoid.

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
function sleb(n: number): number[] {
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

// Opcodes.
const BLOCK = [0x02, 0x40];
const LOOP = [0x03, 0x40];
const END = 0x0b;
const br = (l: number) => [0x0c, ...uleb(l)];
const brIf = (l: number) => [0x0d, ...uleb(l)];
const get = (i: number) => [0x20, ...uleb(i)];
const set = (i: number) => [0x21, ...uleb(i)];
const i32 = (v: number) => [0x41, ...sleb(v)];
const I32_ADD = 0x6a;
const I32_MUL = 0x6c;
const I32_AND = 0x71;
const I32_SHL = 0x74;
const I32_GE_U = 0x4f;
const i32Load = (offset: number) => [0x28, 2, ...uleb(offset)];
const F32_LOAD = [0x2a, 2, 0];
const F32_STORE = [0x38, 2, 0];
const F32_ADD = 0x92;
const F32_MUL = 0x94;
const V128_LOAD = [0xfd, 0x00, 0, 0];
const V128_STORE = [0xfd, 0x0b, 0, 0];
const F32X4_ADD = [0xfd, ...uleb(228)];
const F32X4_MUL = [0xfd, ...uleb(230)];
const F32X4_SPLAT = [0xfd, ...uleb(19)];
const F32X4_SUB = [0xfd, ...uleb(229)];
const F32_SUB = 0x93;
const teeLocal = (i: number) => [0x22, ...uleb(i)];

/** Rank-1 updates: for each row m, for each ci: out[ci, :] += x[m, ci] * dy[m, :] (dy row stays in L1). */
// eslint-disable-next-line max-lines-per-function -- a hand-written WebAssembly SIMD kernel, one instruction sequence; split, it would no longer read as one loop nest
function outerBody(): number[] {
  const [X, DY, OUT, M, CI, CO, MI, CII, XROW, DYROW, OUTROW, K, CO4, COB, S, SF] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
  ];
  void OUT;
  const body = [
    ...get(CO),
    ...i32(-4),
    I32_AND,
    ...i32(2),
    I32_SHL,
    ...set(CO4),
    ...get(CO),
    ...i32(2),
    I32_SHL,
    ...set(COB),
    ...i32(0),
    ...set(MI),
    ...get(X),
    ...set(XROW),
    ...get(DY),
    ...set(DYROW),
    ...BLOCK,
    ...LOOP, // rows m
    ...get(MI),
    ...get(M),
    I32_GE_U,
    ...brIf(1),
    ...i32(0),
    ...set(CII),
    ...get(2),
    ...set(OUTROW),
    ...BLOCK,
    ...LOOP, // input channels ci
    ...get(CII),
    ...get(CI),
    I32_GE_U,
    ...brIf(1),
    ...get(XROW),
    ...get(CII),
    ...i32(2),
    I32_SHL,
    I32_ADD,
    ...F32_LOAD,
    ...teeLocal(SF),
    ...F32X4_SPLAT,
    ...set(S),
    ...i32(0),
    ...set(K),
    ...BLOCK,
    ...LOOP,
    ...get(K),
    ...get(CO4),
    I32_GE_U,
    ...brIf(1),
    ...get(OUTROW),
    ...get(K),
    I32_ADD,
    ...get(OUTROW),
    ...get(K),
    I32_ADD,
    ...V128_LOAD,
    ...get(S),
    ...get(DYROW),
    ...get(K),
    I32_ADD,
    ...V128_LOAD,
    ...F32X4_MUL,
    ...F32X4_ADD,
    ...V128_STORE,
    ...get(K),
    ...i32(16),
    I32_ADD,
    ...set(K),
    ...br(0),
    END,
    END,
    ...BLOCK,
    ...LOOP,
    ...get(K),
    ...get(COB),
    I32_GE_U,
    ...brIf(1),
    ...get(OUTROW),
    ...get(K),
    I32_ADD,
    ...get(OUTROW),
    ...get(K),
    I32_ADD,
    ...F32_LOAD,
    ...get(SF),
    ...get(DYROW),
    ...get(K),
    I32_ADD,
    ...F32_LOAD,
    F32_MUL,
    F32_ADD,
    ...F32_STORE,
    ...get(K),
    ...i32(4),
    I32_ADD,
    ...set(K),
    ...br(0),
    END,
    END,
    ...get(OUTROW),
    ...get(COB),
    I32_ADD,
    ...set(OUTROW),
    ...get(CII),
    ...i32(1),
    I32_ADD,
    ...set(CII),
    ...br(0),
    END,
    END,
    ...get(XROW),
    ...get(CI),
    ...i32(2),
    I32_SHL,
    I32_ADD,
    ...set(XROW),
    ...get(DYROW),
    ...get(COB),
    I32_ADD,
    ...set(DYROW),
    ...get(MI),
    ...i32(1),
    I32_ADD,
    ...set(MI),
    ...br(0),
    END,
    END,
    END,
  ];
  const locals = [3, ...uleb(8), 0x7f, 1, 0x7b, 1, 0x7d]; // 8 x i32, 1 x v128, 1 x f32
  return [...locals, ...body];
}

/** outer4(x, dy, out, quads, ci, co): like outer over 4*quads rows, four rows per pass over out (4x fewer
 *  loads/stores of out). The caller runs the remaining rows with outer. */
// eslint-disable-next-line max-lines-per-function -- a hand-written WebAssembly SIMD kernel, one instruction sequence; split, it would no longer read as one loop nest
function outer4Body(): number[] {
  const [X, DY, OUT, Q, CI, CO] = [0, 1, 2, 3, 4, 5];
  const [QI, CII, XROW, DYROW, OUTROW, K, CO4, COB, CIB, P, D2, D3] = [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17];
  const [S0, S1, S2, S3] = [18, 19, 20, 21]; // v128
  const [F0, F1, F2, F3] = [22, 23, 24, 25]; // f32
  const splat = (rowOffsetLocal: number | null, sf: number, sv: number) => [
    ...get(XROW),
    ...(rowOffsetLocal === null ? [] : [...get(rowOffsetLocal), I32_ADD]),
    ...get(CII),
    ...i32(2),
    I32_SHL,
    I32_ADD,
    ...F32_LOAD,
    ...teeLocal(sf),
    ...F32X4_SPLAT,
    ...set(sv),
  ];
  // dy row r at P (+ COB, D2, D3)
  const rowPtr = (r: number) => (r === 0 ? get(P) : [...get(P), ...get(r === 1 ? COB : r === 2 ? D2 : D3), I32_ADD]);
  const body = [
    ...get(CO),
    ...i32(-4),
    I32_AND,
    ...i32(2),
    I32_SHL,
    ...set(CO4),
    ...get(CO),
    ...i32(2),
    I32_SHL,
    ...set(COB),
    ...get(CI),
    ...i32(2),
    I32_SHL,
    ...set(CIB),
    ...get(COB),
    ...i32(1),
    I32_SHL,
    ...set(D2),
    ...get(COB),
    ...get(D2),
    I32_ADD,
    ...set(D3),
    ...i32(0),
    ...set(QI),
    ...get(X),
    ...set(XROW),
    ...get(DY),
    ...set(DYROW),
    ...BLOCK,
    ...LOOP,
    ...get(QI),
    ...get(Q),
    I32_GE_U,
    ...brIf(1),
    ...i32(0),
    ...set(CII),
    ...get(OUT),
    ...set(OUTROW),
    ...BLOCK,
    ...LOOP,
    ...get(CII),
    ...get(CI),
    I32_GE_U,
    ...brIf(1),
    ...splat(null, F0, S0),
    ...get(XROW),
    ...get(CIB),
    I32_ADD,
    ...get(CII),
    ...i32(2),
    I32_SHL,
    I32_ADD,
    ...F32_LOAD,
    ...teeLocal(F1),
    ...F32X4_SPLAT,
    ...set(S1),
    ...get(XROW),
    ...get(CIB),
    ...i32(1),
    I32_SHL,
    I32_ADD,
    ...get(CII),
    ...i32(2),
    I32_SHL,
    I32_ADD,
    ...F32_LOAD,
    ...teeLocal(F2),
    ...F32X4_SPLAT,
    ...set(S2),
    ...get(XROW),
    ...get(CIB),
    ...i32(3),
    I32_MUL,
    I32_ADD,
    ...get(CII),
    ...i32(2),
    I32_SHL,
    I32_ADD,
    ...F32_LOAD,
    ...teeLocal(F3),
    ...F32X4_SPLAT,
    ...set(S3),
    ...i32(0),
    ...set(K),
    ...BLOCK,
    ...LOOP,
    ...get(K),
    ...get(CO4),
    I32_GE_U,
    ...brIf(1),
    ...get(DYROW),
    ...get(K),
    I32_ADD,
    ...set(P),
    ...get(OUTROW),
    ...get(K),
    I32_ADD,
    ...get(OUTROW),
    ...get(K),
    I32_ADD,
    ...V128_LOAD,
    ...get(S0),
    ...rowPtr(0),
    ...V128_LOAD,
    ...F32X4_MUL,
    ...F32X4_ADD,
    ...get(S1),
    ...rowPtr(1),
    ...V128_LOAD,
    ...F32X4_MUL,
    ...F32X4_ADD,
    ...get(S2),
    ...rowPtr(2),
    ...V128_LOAD,
    ...F32X4_MUL,
    ...F32X4_ADD,
    ...get(S3),
    ...rowPtr(3),
    ...V128_LOAD,
    ...F32X4_MUL,
    ...F32X4_ADD,
    ...V128_STORE,
    ...get(K),
    ...i32(16),
    I32_ADD,
    ...set(K),
    ...br(0),
    END,
    END,
    ...BLOCK,
    ...LOOP,
    ...get(K),
    ...get(COB),
    I32_GE_U,
    ...brIf(1),
    ...get(DYROW),
    ...get(K),
    I32_ADD,
    ...set(P),
    ...get(OUTROW),
    ...get(K),
    I32_ADD,
    ...get(OUTROW),
    ...get(K),
    I32_ADD,
    ...F32_LOAD,
    ...get(F0),
    ...rowPtr(0),
    ...F32_LOAD,
    F32_MUL,
    F32_ADD,
    ...get(F1),
    ...rowPtr(1),
    ...F32_LOAD,
    F32_MUL,
    F32_ADD,
    ...get(F2),
    ...rowPtr(2),
    ...F32_LOAD,
    F32_MUL,
    F32_ADD,
    ...get(F3),
    ...rowPtr(3),
    ...F32_LOAD,
    F32_MUL,
    F32_ADD,
    ...F32_STORE,
    ...get(K),
    ...i32(4),
    I32_ADD,
    ...set(K),
    ...br(0),
    END,
    END,
    ...get(OUTROW),
    ...get(COB),
    I32_ADD,
    ...set(OUTROW),
    ...get(CII),
    ...i32(1),
    I32_ADD,
    ...set(CII),
    ...br(0),
    END,
    END,
    ...get(XROW),
    ...get(CIB),
    ...i32(2),
    I32_SHL,
    I32_ADD,
    ...set(XROW),
    ...get(DYROW),
    ...get(COB),
    ...i32(2),
    I32_SHL,
    I32_ADD,
    ...set(DYROW),
    ...get(QI),
    ...i32(1),
    I32_ADD,
    ...set(QI),
    ...br(0),
    END,
    END,
    END,
  ];
  const locals = [3, ...uleb(12), 0x7f, 4, 0x7b, 4, 0x7d];
  return [...locals, ...body];
}

/**
 * chanSums(a, u, b, v, s1, s2, m, c): for rows i < m, channels j < c:
 *   s1[j] += a[i,j] - u[j];   s2[j] += (a[i,j] - u[j]) * (b[i,j] - v[j])
 */
// eslint-disable-next-line max-lines-per-function -- a hand-written WebAssembly SIMD kernel, one instruction sequence; split, it would no longer read as one loop nest
function chanSumsBody(): number[] {
  const [A, U, B, V, S1, S2, M, C] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [I, J, RA, RB, C4, CB] = [8, 9, 10, 11, 12, 13];
  const DA = 14; // v128
  const FA = 15; // f32
  const at = (base: number, row?: number) => [...get(row ?? base), ...get(J), I32_ADD];
  const body = [
    ...get(C),
    ...i32(-4),
    I32_AND,
    ...i32(2),
    I32_SHL,
    ...set(C4),
    ...get(C),
    ...i32(2),
    I32_SHL,
    ...set(CB),
    ...i32(0),
    ...set(I),
    ...get(A),
    ...set(RA),
    ...get(B),
    ...set(RB),
    ...BLOCK,
    ...LOOP,
    ...get(I),
    ...get(M),
    I32_GE_U,
    ...brIf(1),
    ...i32(0),
    ...set(J),
    ...BLOCK,
    ...LOOP,
    ...get(J),
    ...get(C4),
    I32_GE_U,
    ...brIf(1),
    ...at(A, RA),
    ...V128_LOAD,
    ...at(U),
    ...V128_LOAD,
    ...F32X4_SUB,
    ...set(DA),
    ...at(S1),
    ...at(S1),
    ...V128_LOAD,
    ...get(DA),
    ...F32X4_ADD,
    ...V128_STORE,
    ...at(S2),
    ...at(S2),
    ...V128_LOAD,
    ...get(DA),
    ...at(B, RB),
    ...V128_LOAD,
    ...at(V),
    ...V128_LOAD,
    ...F32X4_SUB,
    ...F32X4_MUL,
    ...F32X4_ADD,
    ...V128_STORE,
    ...get(J),
    ...i32(16),
    I32_ADD,
    ...set(J),
    ...br(0),
    END,
    END,
    ...BLOCK,
    ...LOOP,
    ...get(J),
    ...get(CB),
    I32_GE_U,
    ...brIf(1),
    ...at(A, RA),
    ...F32_LOAD,
    ...at(U),
    ...F32_LOAD,
    F32_SUB,
    ...set(FA),
    ...at(S1),
    ...at(S1),
    ...F32_LOAD,
    ...get(FA),
    F32_ADD,
    ...F32_STORE,
    ...at(S2),
    ...at(S2),
    ...F32_LOAD,
    ...get(FA),
    ...at(B, RB),
    ...F32_LOAD,
    ...at(V),
    ...F32_LOAD,
    F32_SUB,
    F32_MUL,
    F32_ADD,
    ...F32_STORE,
    ...get(J),
    ...i32(4),
    I32_ADD,
    ...set(J),
    ...br(0),
    END,
    END,
    ...get(RA),
    ...get(CB),
    I32_ADD,
    ...set(RA),
    ...get(RB),
    ...get(CB),
    I32_ADD,
    ...set(RB),
    ...get(I),
    ...i32(1),
    I32_ADD,
    ...set(I),
    ...br(0),
    END,
    END,
    END,
  ];
  return [3, ...uleb(6), 0x7f, 1, 0x7b, 1, 0x7d, ...body];
}

/** chanAffine(a, p, b, q, r, out, m, c): out[i,j] = a[i,j] * p[j] + b[i,j] * q[j] + r[j]. */
// eslint-disable-next-line max-lines-per-function -- a hand-written WebAssembly SIMD kernel, one instruction sequence; split, it would no longer read as one loop nest
function chanAffineBody(): number[] {
  const [A, P, B, Q, R, OUT, M, C] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [I, J, RA, RB, RO, C4, CB] = [8, 9, 10, 11, 12, 13, 14];
  const at = (base: number, row?: number) => [...get(row ?? base), ...get(J), I32_ADD];
  const body = [
    ...get(C),
    ...i32(-4),
    I32_AND,
    ...i32(2),
    I32_SHL,
    ...set(C4),
    ...get(C),
    ...i32(2),
    I32_SHL,
    ...set(CB),
    ...i32(0),
    ...set(I),
    ...get(A),
    ...set(RA),
    ...get(B),
    ...set(RB),
    ...get(OUT),
    ...set(RO),
    ...BLOCK,
    ...LOOP,
    ...get(I),
    ...get(M),
    I32_GE_U,
    ...brIf(1),
    ...i32(0),
    ...set(J),
    ...BLOCK,
    ...LOOP,
    ...get(J),
    ...get(C4),
    I32_GE_U,
    ...brIf(1),
    ...at(OUT, RO),
    ...at(A, RA),
    ...V128_LOAD,
    ...at(P),
    ...V128_LOAD,
    ...F32X4_MUL,
    ...at(B, RB),
    ...V128_LOAD,
    ...at(Q),
    ...V128_LOAD,
    ...F32X4_MUL,
    ...F32X4_ADD,
    ...at(R),
    ...V128_LOAD,
    ...F32X4_ADD,
    ...V128_STORE,
    ...get(J),
    ...i32(16),
    I32_ADD,
    ...set(J),
    ...br(0),
    END,
    END,
    ...BLOCK,
    ...LOOP,
    ...get(J),
    ...get(CB),
    I32_GE_U,
    ...brIf(1),
    ...at(OUT, RO),
    ...at(A, RA),
    ...F32_LOAD,
    ...at(P),
    ...F32_LOAD,
    F32_MUL,
    ...at(B, RB),
    ...F32_LOAD,
    ...at(Q),
    ...F32_LOAD,
    F32_MUL,
    F32_ADD,
    ...at(R),
    ...F32_LOAD,
    F32_ADD,
    ...F32_STORE,
    ...get(J),
    ...i32(4),
    I32_ADD,
    ...set(J),
    ...br(0),
    END,
    END,
    ...get(RA),
    ...get(CB),
    I32_ADD,
    ...set(RA),
    ...get(RB),
    ...get(CB),
    I32_ADD,
    ...set(RB),
    ...get(RO),
    ...get(CB),
    I32_ADD,
    ...set(RO),
    ...get(I),
    ...i32(1),
    I32_ADD,
    ...set(I),
    ...br(0),
    END,
    END,
    END,
  ];
  return [1, ...uleb(7), 0x7f, ...body];
}

/** swishGrad(dy, x, s, out, n, _): out = dy * s * (1 + x - x * s), s = sigmoid(x); n elements. */
function swishGradBody(): number[] {
  const [DY, X, S, OUT, N] = [0, 1, 2, 3, 4];
  const [J, N4, NB, ONE] = [6, 7, 8, 9]; // ONE: v128
  const at = (base: number) => [...get(base), ...get(J), I32_ADD];
  const F32_CONST_1 = [0x43, 0x00, 0x00, 0x80, 0x3f];
  const body = [
    ...get(N),
    ...i32(-4),
    I32_AND,
    ...i32(2),
    I32_SHL,
    ...set(N4),
    ...get(N),
    ...i32(2),
    I32_SHL,
    ...set(NB),
    ...F32_CONST_1,
    ...F32X4_SPLAT,
    ...set(ONE),
    ...i32(0),
    ...set(J),
    ...BLOCK,
    ...LOOP,
    ...get(J),
    ...get(N4),
    I32_GE_U,
    ...brIf(1),
    ...at(OUT),
    ...at(DY),
    ...V128_LOAD,
    ...at(S),
    ...V128_LOAD,
    ...F32X4_MUL,
    ...get(ONE),
    ...at(X),
    ...V128_LOAD,
    ...at(X),
    ...V128_LOAD,
    ...at(S),
    ...V128_LOAD,
    ...F32X4_MUL,
    ...F32X4_SUB,
    ...F32X4_ADD,
    ...F32X4_MUL,
    ...V128_STORE,
    ...get(J),
    ...i32(16),
    I32_ADD,
    ...set(J),
    ...br(0),
    END,
    END,
    ...BLOCK,
    ...LOOP,
    ...get(J),
    ...get(NB),
    I32_GE_U,
    ...brIf(1),
    ...at(OUT),
    ...at(DY),
    ...F32_LOAD,
    ...at(S),
    ...F32_LOAD,
    F32_MUL,
    ...F32_CONST_1,
    ...at(X),
    ...F32_LOAD,
    ...at(X),
    ...F32_LOAD,
    ...at(S),
    ...F32_LOAD,
    F32_MUL,
    F32_SUB,
    F32_ADD,
    F32_MUL,
    ...F32_STORE,
    ...get(J),
    ...i32(4),
    I32_ADD,
    ...set(J),
    ...br(0),
    END,
    END,
    END,
  ];
  return [2, ...uleb(3), 0x7f, 1, 0x7b, ...body];
}

// eslint-disable-next-line max-lines-per-function -- a hand-written WebAssembly SIMD kernel, one instruction sequence; split, it would no longer read as one loop nest
function tripleMacModule(): Uint8Array {
  // params 0..5: triples, count, out, a, b, c ; locals 6..13: t, tEnd, o, ia, ib, j, c4Bytes, cBytes
  const [TRIPLES, COUNT, OUT, A, B, C, T, TEND, O, IA, IB, J, C4, CB] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
  const body = [
    ...get(C),
    ...i32(-4),
    I32_AND,
    ...i32(2),
    I32_SHL,
    ...set(C4),
    ...get(C),
    ...i32(2),
    I32_SHL,
    ...set(CB),
    ...get(TRIPLES),
    ...set(T),
    ...get(TRIPLES),
    ...get(COUNT),
    ...i32(12),
    I32_MUL,
    I32_ADD,
    ...set(TEND),
    ...BLOCK,
    ...LOOP, // $done / $triples
    ...get(T),
    ...get(TEND),
    I32_GE_U,
    ...brIf(1),
    ...get(OUT),
    ...get(T),
    ...i32Load(0),
    ...i32(2),
    I32_SHL,
    I32_ADD,
    ...set(O),
    ...get(A),
    ...get(T),
    ...i32Load(4),
    ...i32(2),
    I32_SHL,
    I32_ADD,
    ...set(IA),
    ...get(B),
    ...get(T),
    ...i32Load(8),
    ...i32(2),
    I32_SHL,
    I32_ADD,
    ...set(IB),
    ...i32(0),
    ...set(J),
    // Vector part.
    ...BLOCK,
    ...LOOP,
    ...get(J),
    ...get(C4),
    I32_GE_U,
    ...brIf(1),
    ...get(O),
    ...get(J),
    I32_ADD,
    ...get(O),
    ...get(J),
    I32_ADD,
    ...V128_LOAD,
    ...get(IA),
    ...get(J),
    I32_ADD,
    ...V128_LOAD,
    ...get(IB),
    ...get(J),
    I32_ADD,
    ...V128_LOAD,
    ...F32X4_MUL,
    ...F32X4_ADD,
    ...V128_STORE,
    ...get(J),
    ...i32(16),
    I32_ADD,
    ...set(J),
    ...br(0),
    END,
    END,
    // Scalar tail.
    ...BLOCK,
    ...LOOP,
    ...get(J),
    ...get(CB),
    I32_GE_U,
    ...brIf(1),
    ...get(O),
    ...get(J),
    I32_ADD,
    ...get(O),
    ...get(J),
    I32_ADD,
    ...F32_LOAD,
    ...get(IA),
    ...get(J),
    I32_ADD,
    ...F32_LOAD,
    ...get(IB),
    ...get(J),
    I32_ADD,
    ...F32_LOAD,
    F32_MUL,
    F32_ADD,
    ...F32_STORE,
    ...get(J),
    ...i32(4),
    I32_ADD,
    ...set(J),
    ...br(0),
    END,
    END,
    ...get(T),
    ...i32(12),
    I32_ADD,
    ...set(T),
    ...br(0),
    END,
    END,
    END,
  ];
  const locals = [1, ...uleb(8), 0x7f]; // one group: 8 x i32
  const func = [...locals, ...body];
  const outer = outerBody();
  const outer4 = outer4Body();
  const sums = chanSumsBody();
  const affine = chanAffineBody();
  const swish = swishGradBody();
  const i32x = (n: number) => new Array<number>(n).fill(0x7f);
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, [2, 0x60, ...uleb(6), ...i32x(6), 0, 0x60, ...uleb(8), ...i32x(8), 0]),
    ...section(2, [1, ...str('env'), ...str('memory'), 0x02, 0x00, ...uleb(1)]),
    ...section(3, [6, 0, 0, 0, 1, 1, 0]),
    ...section(7, [
      6,
      ...str('run'),
      0x00,
      0,
      ...str('outer'),
      0x00,
      1,
      ...str('outer4'),
      0x00,
      2,
      ...str('chanSums'),
      0x00,
      3,
      ...str('chanAffine'),
      0x00,
      4,
      ...str('swishGrad'),
      0x00,
      5,
    ]),
    ...section(10, [
      6,
      ...uleb(func.length),
      ...func,
      ...uleb(outer.length),
      ...outer,
      ...uleb(outer4.length),
      ...outer4,
      ...uleb(sums.length),
      ...sums,
      ...uleb(affine.length),
      ...affine,
      ...uleb(swish.length),
      ...swish,
    ]),
  ]);
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
export interface SimdKernels {
  swishGrad: SwishGrad;
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
    const bytes = tripleMacModule();
    if (WA.validate(bytes)) {
      const { exports } = new WA.Instance(new WA.Module(bytes), { env: { memory } });
      const outer1 = exports.outer as OuterAccumulate;
      const outer4 = exports.outer4 as OuterAccumulate;
      k = {
        tripleMac: exports.run as TripleMac,
        chanSums: exports.chanSums as ChanSums,
        swishGrad: exports.swishGrad as SwishGrad,
        chanAffine: exports.chanAffine as ChanAffine,
        outer: (x, dy, out, m, ci, co) => {
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
