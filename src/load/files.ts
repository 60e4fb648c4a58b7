// Reading the YAML files a pipeline is made of, and positions in them for diagnostics. A file is read only when
// it is a regular file of at most MAX_YAML_BYTES and valid UTF-8 (a bad byte is an error with its position,
// never silently replaced), so a huge or binary file costs nothing and is named in the error.
import { isUtf8 } from 'node:buffer';
import { readFileSync, statSync } from 'node:fs';
import type { Diagnostic } from '../core/errors.js';
import { displayPath } from '../core/fsutil.js';
import { locate, parseYamlCached, type YamlCache, type YamlFile } from './yaml.js';

export interface Where {
  file: string;
  line: number;
  column: number;
  source?: string;
}

/** Pipeline, config and sweep files above this size are refused: they are for settings, not data. */
export const MAX_YAML_BYTES = 1024 * 1024;

/** Byte offset of the first byte that does not start a valid UTF-8 sequence, or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  const cont = (i: number, lo = 0x80, hi = 0xbf) => i < b.length && b[i] >= lo && b[i] <= hi;
  for (let i = 0; i < b.length;) {
    const c = b[i];
    let n: number;
    if (c < 0x80) n = 1;
    else if (c >= 0xc2 && c <= 0xdf) n = cont(i + 1) ? 2 : 0;
    else if (c === 0xe0) n = cont(i + 1, 0xa0) && cont(i + 2) ? 3 : 0;
    else if (c === 0xed) n = cont(i + 1, 0x80, 0x9f) && cont(i + 2) ? 3 : 0;
    else if (c >= 0xe1 && c <= 0xef) n = cont(i + 1) && cont(i + 2) ? 3 : 0;
    else if (c === 0xf0) n = cont(i + 1, 0x90) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    else if (c >= 0xf1 && c <= 0xf3) n = cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    else if (c === 0xf4) n = cont(i + 1, 0x80, 0x8f) && cont(i + 2) && cont(i + 3) ? 4 : 0;
    else n = 0;
    if (n === 0) return i;
    i += n;
  }
  return -1;
}

/**
 * The text of a settings file (pipeline, config, sweep file), or a diagnostic naming it: missing, not a regular
 * file, over MAX_YAML_BYTES, or not UTF-8 (with line and column of the first bad byte).
 */
export function readSettingsText(
  workspace: string,
  absPath: string,
  what: string,
): { file: string; text?: string; diagnostic?: Diagnostic } {
  const file = displayPath(workspace, absPath);
  let bytes: Buffer;
  try {
    const st = statSync(absPath);
    if (!st.isFile())
      return {
        file,
        diagnostic: {
          code: 'file-missing',
          file,
          message: `${what} ${file} is not a regular file`,
          hint: 'name a YAML file',
        },
      };
    if (st.size > MAX_YAML_BYTES)
      return {
        file,
        diagnostic: {
          code: 'file-too-large',
          file,
          message: `${what} ${file} is ${(st.size / 1024 / 1024).toFixed(1)} MiB; pipeline, config and sweep files may be at most 1 MiB`,
          hint: 'keep data out of settings files: give large data to a stage as a file input ({ path: ... })',
        },
      };
    bytes = readFileSync(absPath);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return {
      file,
      diagnostic: {
        code: 'file-missing',
        file,
        message: `cannot read ${what} ${file}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
        hint: `check the path (resolved to ${absPath})`,
      },
    };
  }
  if (!isUtf8(bytes)) {
    const at = firstInvalidUtf8(bytes);
    const lineStart = bytes.lastIndexOf(0x0a, at - 1) + 1;
    const text = bytes.subarray(0, lineStart).toString('utf8');
    return {
      file,
      diagnostic: {
        code: 'not-utf8',
        file,
        line: text.split('\n').length,
        column: bytes.subarray(lineStart, at).toString('utf8').length + 1,
        message: `${what} ${file} is not valid UTF-8: byte 0x${bytes[at].toString(16).padStart(2, '0')} at offset ${at}`,
        source: bytes.toString('utf8'),
        hint: 'save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)',
      },
    };
  }
  return { file, text: bytes.toString('utf8') };
}

export function readYaml(
  workspace: string,
  absPath: string,
  diags: Diagnostic[],
  what: string,
  cache?: YamlCache,
): YamlFile | undefined {
  const { file, text, diagnostic } = readSettingsText(workspace, absPath, what);
  if (text === undefined) {
    diags.push(diagnostic!);
    return undefined;
  }
  const { yaml, diagnostics } = parseYamlCached(file, text, cache);
  diags.push(...diagnostics);
  return yaml;
}

/**
 * `where` with a key path added, its lazy line and column kept lazy: an object spread would read the getters and
 * pay for the full YAML parse on every valid file.
 */
export function withKeyPath<W extends object>(keyPath: string, where: W | undefined): W & { keyPath: string } {
  return Object.defineProperties({ keyPath }, Object.getOwnPropertyDescriptors(where ?? {})) as W & { keyPath: string };
}

/** Where a key is; computed on first read, since positions need the full YAML parse and only errors use them. */
export function at(y: YamlFile, path: Array<string | number>, key = false): Where {
  let p: ReturnType<typeof locate> | undefined;
  const get = () => (p ??= locate(y, path, { key }));
  return {
    file: y.file,
    get line() {
      return get().line;
    },
    get column() {
      return get().column;
    },
    source: y.text,
  };
}
