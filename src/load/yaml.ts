// YAML parsing that keeps positions, so every diagnostic can name file:line:column.
// Safe by construction: the 'core' schema has no tags that build objects or run code, unknown tags are
// errors, and alias expansion is capped (no billion-laughs).
import type { Document, LineCounter, Node } from 'yaml';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Diagnostic } from '../core/errors.js';
import { sha256 } from '../core/hash.js';
import { isPlainObject, prototypeKeyPaths } from '../core/objects.js';
import { readSealed, writeSealed } from '../core/sealed.js';

// The yaml package is CommonJS and costly to load and to run cold (~100 ms for a 50-stage pipeline), so it is
// required only when a file is not in the parse cache or a diagnostic needs positions.
type YamlLib = typeof import('yaml');
let lib: YamlLib | undefined;
export function yamlLib(): YamlLib {
  return (lib ??= createRequire(import.meta.url)('yaml') as YamlLib);
}

export interface YamlFile {
  /** Path as shown to the user (relative to the cwd where possible). */
  file: string;
  text: string;
  /** The parsed document with positions; built on first use when the value came from the parse cache. */
  readonly doc: Document.Parsed;
  readonly lineCounter: LineCounter;
  value: unknown;
}

/**
 * Values of YAML files that parsed cleanly before, by sha256 of their text. Entries are written only by
 * commit(), which the loader calls after the whole pipeline validated, so bad input writes nothing. Each entry is
 * sealed (a digest of its own content) and names the text it is the value of: an edited, emptied or swapped
 * entry is not used (the file is parsed again, with a warning) and is rewritten.
 */
export class YamlCache {
  private pending = new Map<string, unknown>();
  private damaged = new Set<string>();
  constructor(
    private readonly dir: string,
    private readonly warn: (file: string, why: string, then: string) => void = () => {},
  ) {}
  get(hash: string): { value: unknown } | undefined {
    const p = join(this.dir, `${hash}.json`);
    const r = readSealed(p, (v): v is { text: string; value: unknown } => isPlainObject(v) && 'value' in v);
    if (r.state === 'absent') return undefined;
    if (r.state === 'ok' && r.value.text === hash) return { value: r.value.value };
    this.warn(p, r.state === 'bad' ? r.why : 'it is the entry of another text', 'the YAML file is parsed again');
    this.damaged.add(hash);
    return undefined;
  }
  put(hash: string, value: unknown): void {
    this.pending.set(hash, value);
  }
  commit(): void {
    for (const [h, v] of this.pending) {
      const p = join(this.dir, `${h}.json`);
      if (this.damaged.has(h) || !existsSync(p)) writeSealed(p, { text: h, value: v ?? null }, { durable: false });
    }
    this.pending.clear();
    this.damaged.clear();
  }
}

function parseDoc(text: string): { doc: Document.Parsed; lineCounter: LineCounter } {
  const Y = yamlLib();
  const lineCounter = new Y.LineCounter();
  const doc = Y.parseDocument(text, {
    lineCounter,
    schema: 'core',
    merge: false,
    uniqueKeys: true,
    prettyErrors: false,
    strict: true,
  });
  return { doc, lineCounter };
}

function lazyFile(file: string, text: string, value: unknown): YamlFile {
  let parsed: ReturnType<typeof parseDoc> | undefined;
  return {
    file,
    text,
    value,
    get doc() {
      return (parsed ??= parseDoc(text)).doc;
    },
    get lineCounter() {
      return (parsed ??= parseDoc(text)).lineCounter;
    },
  };
}

export function parseYamlCached(
  file: string,
  text: string,
  cache?: YamlCache,
): { yaml?: YamlFile; diagnostics: Diagnostic[] } {
  const hash = sha256(text);
  const hit = cache?.get(hash);
  if (hit) return { yaml: lazyFile(file, text, hit.value), diagnostics: [] };
  const r = parseYaml(file, text);
  if (r.yaml && cache) cache.put(hash, r.yaml.value);
  return r;
}

export interface Position {
  line: number;
  column: number;
}

const MAX_ALIAS_COUNT = 100;

export function parseYaml(file: string, text: string): { yaml?: YamlFile; diagnostics: Diagnostic[] } {
  const { doc, lineCounter } = parseDoc(text);
  const diagnostics: Diagnostic[] = [];
  const at = (offset: number) => lineCounter.linePos(offset);
  for (const e of doc.errors) {
    const { line, col } = at(e.pos[0]);
    const duplicate = e.code === 'DUPLICATE_KEY';
    diagnostics.push({
      code: duplicate ? 'duplicate-key' : 'yaml-syntax',
      message: duplicate ? `duplicate key: ${firstLine(e.message)}` : `YAML syntax error: ${firstLine(e.message)}`,
      file,
      line,
      column: col,
      source: text,
      hint: duplicate
        ? 'each key (and each stage name) may appear only once in a mapping'
        : 'fix the YAML syntax at this place',
    });
  }
  for (const w of doc.warnings) {
    const { line, col } = at(w.pos[0]);
    const tag = w.code === 'TAG_RESOLVE_FAILED';
    diagnostics.push({
      code: tag ? 'yaml-tag' : 'yaml-warning',
      message: tag ? `unsupported YAML tag: ${firstLine(w.message)}` : firstLine(w.message),
      file,
      line,
      column: col,
      source: text,
      hint: tag
        ? 'facepipe reads plain YAML only (strings, numbers, booleans, null, lists, mappings); remove the tag'
        : undefined,
    });
  }
  if (diagnostics.length) return { diagnostics };
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    return {
      diagnostics: [
        {
          code: 'yaml-aliases',
          file,
          line: 1,
          column: 1,
          message: `too many YAML alias expansions (${(e as Error).message})`,
          hint: `use at most ${MAX_ALIAS_COUNT} alias expansions; write the values out`,
        },
      ],
    };
  }
  const yaml: YamlFile = { file, text, doc, lineCounter, value };
  for (const path of prototypeKeyPaths(value)) {
    const pos = locate(yaml, path, { key: true });
    diagnostics.push({
      code: 'forbidden-key',
      message: `key '${path[path.length - 1]}' is not allowed (it names an object's prototype)`,
      file,
      line: pos.line,
      column: pos.column,
      keyPath: path.join('.'),
      source: text,
      hint: 'rename or remove this key; __proto__, constructor and prototype are never param names',
    });
  }
  return diagnostics.length ? { diagnostics } : { yaml, diagnostics };
}

function firstLine(s: string): string {
  return s.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
}

/**
 * Position of the node at `path` (or of its key with `key: true`). When the path does not exist, the deepest
 * existing ancestor's position is returned with exact=false (e.g. where a missing key should go).
 */
export function locate(
  y: YamlFile,
  path: ReadonlyArray<string | number>,
  opts: { key?: boolean } = {},
): Position & { exact: boolean } {
  const { isMap, isPair, isScalar, isSeq } = yamlLib();
  let node: unknown = y.doc.contents;
  let pos = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return { ...toPos(y, pos), exact: false };
      if (last && opts.key) return { ...toPos(y, rangeStart(pair.key) ?? pos), exact: true };
      node = pair.value;
      pos = rangeStart(node) ?? rangeStart(pair.key) ?? pos;
    } else if ((isSeq(node) && typeof seg === 'number') || (isSeq(node) && /^\d+$/.test(String(seg)))) {
      const item = (node as { items: unknown[] }).items[Number(seg)];
      if (item === undefined) return { ...toPos(y, pos), exact: false };
      node = item;
      pos = rangeStart(node) ?? pos;
    } else {
      return { ...toPos(y, pos), exact: false };
    }
  }
  return { ...toPos(y, pos), exact: true };
}

export function hasPath(y: YamlFile, path: ReadonlyArray<string | number>): boolean {
  return locate(y, path).exact;
}

function rangeStart(node: unknown): number | undefined {
  const r = (node as Node | undefined)?.range;
  return r ? r[0] : undefined;
}

function toPos(y: YamlFile, offset: number): Position {
  const { line, col } = y.lineCounter.linePos(offset);
  return { line, column: col };
}
