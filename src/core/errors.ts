// The one error type of facepipe: a list of diagnostics, each naming where (file:line:column, key path),
// what, and how to fix it. Every layer throws FacepipeError; the CLI prints it with formatError.

export interface Diagnostic {
  /** Stable machine code, e.g. 'yaml-syntax', 'unknown-key', 'cycle'. */
  code: string;
  message: string;
  file?: string;
  line?: number;
  column?: number;
  /** Dotted key path inside the file, e.g. 'stages.split.params.seed'. */
  keyPath?: string;
  /** How to fix it. */
  hint?: string;
  /** Source text used for a code frame (the whole file; the printer cuts the lines around `line`). */
  source?: string;
}

/** Marks a FacepipeError across copies of this module (the bundled CLI and the stage kinds it loads). */
const BRAND = Symbol.for('facepipe.FacepipeError');

export class FacepipeError extends Error {
  /**
   * instanceof FacepipeError by brand, not by prototype: one copy's errors are another copy's too. A subclass
   * (SlurmCommandError) keeps the prototype test.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    if (this !== FacepipeError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
  readonly [BRAND] = true;
  readonly diagnostics: Diagnostic[];
  /** Process exit code the CLI uses. 2 = bad input, 1 = a stage failed, 130 = interrupted. */
  readonly exitCode: number;
  constructor(diagnostics: Diagnostic | Diagnostic[], exitCode = 2) {
    const list = Array.isArray(diagnostics) ? diagnostics : [diagnostics];
    super(list.map((d) => d.message).join('\n'));
    this.name = 'FacepipeError';
    this.diagnostics = list;
    this.exitCode = exitCode;
  }
}

export function fail(code: string, message: string, extra: Omit<Diagnostic, 'code' | 'message'> = {}): never {
  throw new FacepipeError({ code, message, ...extra });
}

function codeFrame(source: string, line: number, column: number): string {
  const lines = source.split(/\r?\n/);
  const from = Math.max(1, line - 2);
  const to = Math.min(lines.length, line + 1);
  const width = String(to).length;
  const out: string[] = [];
  for (let n = from; n <= to; n++) {
    const mark = n === line ? '>' : ' ';
    out.push(`${mark} ${String(n).padStart(width)} | ${lines[n - 1] ?? ''}`);
    if (n === line) out.push(`  ${' '.repeat(width)} | ${' '.repeat(Math.max(0, column - 1))}^`);
  }
  return out.join('\n');
}

export function formatDiagnostic(d: Diagnostic): string {
  let where = '';
  if (d.file) where = d.file + (d.line ? `:${d.line}:${d.column ?? 1}` : '') + ': ';
  let text = `${where}error[${d.code}]: ${d.message}`;
  if (d.keyPath) text += `\n  at key: ${d.keyPath}`;
  if (d.source && d.line) text += '\n' + codeFrame(d.source, d.line, d.column ?? 1);
  if (d.hint) text += `\n  fix: ${d.hint}`;
  return text;
}

/** Printer for any thrown value: diagnostics for ours, the message (and stack with FACEPIPE_DEBUG) otherwise. */
export function formatError(err: unknown): string {
  if (err instanceof FacepipeError) {
    const n = err.diagnostics.length;
    const body = err.diagnostics.map(formatDiagnostic).join('\n\n');
    return n > 1 ? `${body}\n\n${n} errors` : body;
  }
  if (err instanceof Error) return process.env.FACEPIPE_DEBUG ? String(err.stack) : `error: ${err.message}`;
  return `error: ${String(err)}`;
}

/** Levenshtein-based suggestion: the closest candidate within a small edit distance. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  const limit = Math.max(1, Math.floor(word.length / 3));
  return best !== undefined && bestD <= limit ? best : undefined;
}

/** Edit distance where swapping two neighbouring letters counts as one edit ('trian' -> 'train'). */
function editDistance(a: string, b: string): number {
  let before = Array.from({ length: b.length + 1 }, () => 0);
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2] + 1);
      cur.push(d);
    }
    before = prev;
    prev = cur;
  }
  return prev[b.length];
}
